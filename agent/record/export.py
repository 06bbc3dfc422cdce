"""Datasets for the trainers, built from kept samples.

Each export replaces its target directory whole: it is written beside the target, then
swapped in, so a trainer never sees a half-cleaned or half-written dataset.
"""

from __future__ import annotations

import csv
import io
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from agent.record.readiness import sovits_reference
from agent.record.store import Sample, SampleStore

TARGETS = {
    "rvc": "rvc-reference",
    "kokoro": "kokoro-datasets",
    "sovits": "sovits-reference",
}


def target_dir(profile_dir: Path, kind: str, speaker: str) -> Path:
    return profile_dir / "out" / "voices" / TARGETS[kind] / speaker


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


def choose(store: SampleStore, kind: str, ids: list[str] | None, best: int | None, min_score: float | None) -> list[Sample]:
    if ids:
        chosen = [s for s in (store.get(i) for i in ids) if s is not None]
    else:
        chosen = store.list(order="score", limit=best, min_score=min_score)
    if kind == "kokoro":
        chosen = [s for s in chosen if s.transcript]
    if kind == "sovits":
        best_ref = sovits_reference(chosen)
        chosen = [best_ref] if best_ref else []
    return chosen


def export(store: SampleStore, profile_dir: Path, kind: str, speaker: str, samples: list[Sample]) -> Path:
    target = target_dir(profile_dir, kind, speaker)

    def fill(directory: Path) -> None:
        for sample in samples:
            shutil.copy2(store.path(sample), directory / sample.file)
        if kind == "kokoro":
            # LJSpeech-style list: file|transcript
            lines = io.StringIO()
            writer = csv.writer(lines, delimiter="|", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            for sample in samples:
                writer.writerow([sample.file, sample.transcript])
            (directory / "metadata.csv").write_text(lines.getvalue(), encoding="utf-8")
        if kind == "sovits" and samples:
            # GPT-SoVITS needs the reference's words as its prompt text
            (directory / f"{Path(samples[0].file).stem}.txt").write_text(samples[0].transcript or "", encoding="utf-8")

    replace_dir(target, fill)
    return target
