"""librosa, imported so that two processes never fill numba's cache at the same moment.

librosa compiles its gufuncs (``localmin`` of YIN, the zero crossings, the parabolic
interpolation) when their modules are imported, and keeps them in numba's cache on disk. Two or
more processes compiling them at once (a fresh install: the agent, a job process, parallel tests)
can write a cache whose two halves of one gufunc disagree, and from then on every process that
loads it crashes with a segfault (numba#10128; seen in CI as a segfault in ``librosa.yin``, then
in every later test that reached it). The first import in each process holds a lock: one process
compiles and writes while the others wait, then they load what it wrote.
"""

from __future__ import annotations

import fcntl
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

# librosa's modules with cached gufuncs that our calls reach (YIN, RMS, mel spectrograms: ours and
# Resemblyzer's; torchcrepe's Viterbi); ``librosa.beat`` has more, but nothing here imports it.
GUFUNC_MODULES = ("librosa.util.utils", "librosa.core.audio", "librosa.core.pitch")


def lock_path() -> Path:
    """One lock per user and temp directory (the agent's job processes share the service's
    private /tmp), named for what it guards."""
    return Path(tempfile.gettempdir()) / f"voice-agent-numba-{os.getuid()}.lock"


def load_librosa() -> ModuleType:
    """librosa with its gufuncs compiled or loaded; call it before librosa, Resemblyzer or
    torchcrepe is used."""
    if not all(name in sys.modules for name in GUFUNC_MODULES):
        with _held(lock_path()):
            for name in GUFUNC_MODULES:
                importlib.import_module(name)
    return importlib.import_module("librosa")


@contextmanager
def _held(path: Path) -> Iterator[None]:
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:  # never worse than without the lock
        log.warning("librosa's numba cache is filled without a lock (%s: %s)", path, error)
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing lets go of the lock
