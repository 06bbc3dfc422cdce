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


def child_failure(stderr: str, returncode: int) -> str:
    """Why a short-lived child failed, short enough for a message: its last line on stderr (500
    characters at most), else its exit status."""
    return (stderr.strip().splitlines() or [f"exit status {returncode}"])[-1][:500]


def follow_parent(on_orphaned: Callable[[], None], interval: float = 1.0) -> None:
    """In a child: call ``on_orphaned`` once the parent is gone (the child was re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("the agent (pid %d) is gone; stopping", parent)
        on_orphaned()

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _libc_function(name: str) -> Callable[..., int] | None:
    """A glibc function (``malloc_trim``, ``mallopt``); ``None`` where the C library has none (musl, macOS)."""
    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    return found


_MALLOC_TRIM = _libc_function("malloc_trim")
_MALLOPT = _libc_function("mallopt")
M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def map_large_allocations(threshold_bytes: int = 1 << 20) -> None:
    """From now on, blocks of ``threshold_bytes`` or more are mapped on their own and unmapped
    when freed. glibc raises this threshold as large blocks are freed (up to 32 MB), so a
    process freeing and allocating activations of a few MB each (a gradient step) serves them
    from its heap, where freed ones stay resident between live ones: a voicepack step peaked
    at 3.0 instead of 3.5 GB with 1 MB, 1.9 instead of 2.6 GB with its graph recomputed in pieces
    (bench/RESULTS.md). For processes that do such work alone, like a training job."""
    if _MALLOPT is not None:
        _MALLOPT(M_MMAP_THRESHOLD, int(threshold_bytes))


def release_free_memory() -> None:
    """Hand what the heap has freed back to the system, so the agent's RSS after a request is
    what it holds, not the peak of the longest request it ever served: glibc keeps freed pages in
    the arena of the thread that used them until told to trim."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
