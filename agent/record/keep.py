"""What the record path lets go of (``record.keep`` in voice.json): a home server's disk is not
endless, and a flood of exports or captures must not fill it. Pure choices; the callers delete
and say so with an event."""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.record.config import KeepConfig
from agent.record.store import Sample

DAY = 86400.0


def samples_to_prune(samples: list[Sample], keep: KeepConfig, now: float) -> dict[str, str]:
    """``{sample id: why}``: samples older than ``maxDays``, then the lowest-scoring beyond
    ``maxSamples`` (the best voice data stays whatever its age order)."""
    reasons: dict[str, str] = {}
    if keep.max_days > 0:
        cutoff = now - keep.max_days * DAY
        for sample in samples:
            if sample.created < cutoff:
                reasons[sample.id] = f"older than {keep.max_days:g} days"
    left = [s for s in samples if s.id not in reasons]
    if len(left) > keep.max_samples:
        ranked = sorted(left, key=lambda s: (s.score, s.created), reverse=True)
        for sample in ranked[keep.max_samples:]:
            reasons[sample.id] = f"more than {keep.max_samples} samples kept; its score {sample.score:.0f} is among the lowest"
    return reasons


def exports_beyond(parent: Path, max_exports: int, protect: set[str]) -> list[Path]:
    """The oldest exported datasets under ``parent`` (one folder per speaker) beyond ``max_exports``;
    the ``protect``ed names (the one just written, the voice the profile speaks with) never."""
    if not parent.is_dir():
        return []
    folders = sorted(
        (p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime, reverse=True,
    )
    kept = [p for p in folders if p.name in protect]
    old = []
    for folder in folders:
        if folder.name in protect:
            continue
        if len(kept) < max_exports:
            kept.append(folder)
        else:
            old.append(folder)
    return old


def remove_exports(folders: list[Path]) -> list[str]:
    """Remove these dataset folders; the names of those gone."""
    gone = []
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            gone.append(folder.name)
    return gone
