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
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back this way
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand what the heap has freed back to the system. glibc keeps freed pages in the arena of
    the thread that used them, so after one long synthesis a daemon's RSS stays at that request's
    peak (and creeps up as later requests land in other free chunks) unless it is told to trim."""
    if _TRIM is not None:
        _TRIM(0)
