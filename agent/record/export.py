"""Datasets for the providers, built from kept samples (what each takes is in its spec).

Each export replaces its target directory whole: it is written beside the target, then
swapped in, so a trainer never sees a half-cleaned or half-written dataset.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.layout import Layout
from agent.record.store import Sample, SampleStore
from providers import registry
from providers.spec import DatasetSpec


def dataset_of(provider: str) -> DatasetSpec:
    dataset = registry.spec(provider).dataset
    if dataset is None:
        raise KeyError(f"{provider} takes no dataset")
    return dataset


def target_dir(layout: Layout, profile: str, provider: str, speaker: str) -> Path:
    return layout.voice_folder(profile, dataset_of(provider).folder, speaker)


def replace_dir(target: Path, fill: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:6]}.new"
    staging.mkdir()
    try:
        fill(staging)
        old = target.parent / f".{target.name}.{uuid.uuid4().hex[:6]}.old"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def choose(store: SampleStore, provider: str, ids: list[str] | None, best: int | None, min_score: float | None) -> list[Sample]:
    """The named samples, or the best ones; then what the provider takes of them."""
    if ids:
        chosen = [s for s in (store.get(i) for i in ids) if s is not None]
    else:
        chosen = store.list(order="score", limit=best, min_score=min_score)
    return take(provider, chosen)


def take(provider: str, samples: list[Sample]) -> list[Sample]:
    """What the provider's dataset takes of ``samples``, in their order."""
    taken = {s.id for s in dataset_of(provider).choose(samples)}
    return [s for s in samples if s.id in taken]


def export(store: SampleStore, target: Path, provider: str, samples: Sequence[Sample]) -> Path:
    index = dataset_of(provider).write_index

    def fill(directory: Path) -> None:
        for sample in samples:
            shutil.copy2(store.path(sample), directory / sample.file)
        if index is not None:
            index(directory, samples)

    replace_dir(target, fill)
    return target
