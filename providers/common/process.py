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


class _Glibc:
    """glibc's heap control, where the C library is glibc (elsewhere the call does nothing)."""

    def __init__(self) -> None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            self.trim: Callable[[int], int] | None = libc.malloc_trim
        except (OSError, AttributeError):  # musl, macOS
            self.trim = None


_GLIBC = _Glibc()


def release_free_memory() -> None:
    """Hand what the heap has freed back to the system, so the agent's RSS after a request is
    what it holds, not the peak of the longest request it ever served: glibc keeps freed pages in
    the arena of the thread that used them until told to trim."""
    if _GLIBC.trim is not None:
        _GLIBC.trim(0)
