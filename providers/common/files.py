"""Crash-safe file writes and change tags for files users replace behind our back."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """A reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def file_tag(path: Path) -> str:
    """Changes when the file (or any file in the folder) is replaced or edited: cached audio and
    loaded models made from the old files are never served as if they were the new ones."""
    if path.is_dir():
        return "+".join(file_tag(p) for p in sorted(path.iterdir()) if p.is_file())
    stat = path.stat()
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"


def link_now(target: Path, link: Path) -> None:
    """``link`` -> ``target``, replaced at once (a reader never finds it missing)."""
    try:
        if os.readlink(link) == str(target):
            return
    except OSError:
        pass
    fresh = link.with_name(f".{link.name}.new")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(target)
    os.replace(fresh, link)
