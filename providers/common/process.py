"""Child processes that end with the agent: a ``kill -9`` of the agent must not leave a model
process holding 700 MB, nor a trainer writing checkpoints nobody reads. (A child the agent runs
but did not write, the GPT-SoVITS server, is found by its pid file and stopped by the next agent.)"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def follow_parent(on_orphaned: Callable[[], None], interval: float = 1.0) -> None:
    """In a child: call ``on_orphaned`` once the parent is gone (the child was re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("the agent (pid %d) is gone; stopping", parent)
        on_orphaned()

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; ``None`` where the C library has none (musl, macOS)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand what the heap has freed back to the system, so the agent's RSS after a request is
    what it holds, not the peak of the longest request it ever served: glibc keeps freed pages in
    the arena of the thread that used them until told to trim."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
