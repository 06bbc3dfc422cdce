"""A home's lock files (``out/agent.lock``: the one agent of a home; ``out/jobs.lock``: the one
runner of its jobs): an ``flock`` held by an open file, so the kernel lets go when the holder's
process ends, however it ends, and a lock file left behind never blocks anyone."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TextIO


def hold(path: Path) -> TextIO | None:
    """The open file holding the lock on ``path`` (keep it open as long as the lock is wanted; close
    it to let go), with our pid written in it; None while another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def holder(path: Path) -> str:
    """The pid written by the process that holds ``path`` ("?" when it cannot be read)."""
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"
