"""What training leaves on disk (``train.keep`` in voice.json): checkpoints of ended jobs, a few
failed ones to look into, and speakers' logs that would otherwise grow forever."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def remove_checkpoints(root: Path, ended: str | None, active: set[str], keep_failed: int) -> list[str]:
    """Remove the ``ended`` job's folder (finished or cancelled: a new job starts afresh), then
    all but the newest ``keep_failed`` folders of jobs no longer active; the names removed."""
    if ended is not None:
        shutil.rmtree(root / ended, ignore_errors=True)
    if not root.is_dir():
        return []
    left = sorted((p for p in root.iterdir() if p.is_dir() and p.name not in active),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    gone = [p.name for p in left[keep_failed:]]
    for name in gone:
        shutil.rmtree(root / name, ignore_errors=True)
    return gone


def rotate_log(path: Path, max_bytes: int) -> int | None:
    """Move a log above ``max_bytes`` to ``<name>.1`` (replacing the one before); its size when moved."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size <= max_bytes:
        return None
    os.replace(path, path.with_name(path.name + ".1"))
    return size
