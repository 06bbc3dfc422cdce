"""The files a worker made for another node's training job (its checkpoints, its trained files),
offered by SHA-256 on this node's blob route until their home has them: the other direction of
agent/blobs/cache.py, so results too large for a reply come back the way inputs went out.

What is offered is bounded: one job's files at a time (offering a job's files withdraws any other
job's), of each kind the newest only (a checkpoint replaces the one before), withdrawn when the
home says it has them, and all gone at this agent's start. Each file is a copy of its own (a
trainer goes on writing its checkpoint folder), named by its hash and checked as it is copied: a
file that changed while it was read is not offered.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.blobs.index import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offered:
    name: str  # the file's name in the job's folder
    sha256: str
    size: int


class ChangedWhileRead(OSError):
    """A file was written to while it was copied for offering."""


class Offers:
    """This node's offered files: ``find`` serves them (any thread), the worker adds and withdraws."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._job: str | None = None
        self._kinds: dict[str, dict[str, Path]] = {}  # kind -> sha256 -> its copy

    def start(self) -> None:
        """An earlier run's offers go: their jobs' homes resume them from what they hold."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def offer(self, job: str, kind: str, files: list[Path], move: bool = False) -> list[Offered]:
        """``files`` offered for ``job`` as its newest of ``kind`` (``checkpoint``, ``trained``):
        each copied (``move``: moved, a file nobody writes any more) under a name of its own, with
        its hash; the job's earlier files of that kind, and every other job's, withdrawn.
        ``ChangedWhileRead`` when a file changed while it was copied (nothing offered)."""
        held = self.folder / f"{kind}-{uuid.uuid4().hex[:8]}"
        held.mkdir(parents=True)
        offered, copies = [], {}
        try:
            for source in files:
                before = os.stat(source)
                copy = held / source.name
                if move:
                    os.replace(source, copy)
                else:
                    shutil.copyfile(source, copy)
                    after = os.stat(source)
                    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                        raise ChangedWhileRead(f"{source} changed while it was copied")
                sha = sha256_file(copy)
                offered.append(Offered(source.name, sha, copy.stat().st_size))
                copies[sha] = copy
        except BaseException:
            shutil.rmtree(held, ignore_errors=True)
            raise
        with self._lock:
            if self._job != job:
                self._clear()
                self._job = job
            earlier = self._kinds.pop(kind, {})
            self._kinds[kind] = copies
        _remove(earlier.values())
        return offered

    def find(self, sha256: str) -> Path | None:
        with self._lock:
            for copies in self._kinds.values():
                if sha256 in copies:
                    return copies[sha256]
        return None

    def withdraw(self, job: str, hashes: set[str] | None = None) -> None:
        """``job``'s files with these hashes (None: all of them) are no longer offered."""
        gone: list[Path] = []
        with self._lock:
            if self._job != job:
                return
            for copies in self._kinds.values():
                for sha in [sha for sha in copies if hashes is None or sha in hashes]:
                    gone.append(copies.pop(sha))
            if not any(self._kinds.values()):
                self._kinds, self._job = {}, None
        _remove(gone)

    def withdraw_others(self, job: str) -> None:
        """Every file not ``job``'s goes (another job starts here)."""
        with self._lock:
            if self._job != job:
                self._clear()
                self._job = None

    def held(self) -> list[str]:
        """The hashes offered now."""
        with self._lock:
            return sorted(sha for copies in self._kinds.values() for sha in copies)

    def _clear(self) -> None:
        for copies in self._kinds.values():
            _remove(copies.values())
        self._kinds = {}


def _remove(paths: Iterable[Path]) -> None:
    folders = set()
    for path in list(paths):
        path.unlink(missing_ok=True)
        folders.add(path.parent)
    for folder in folders:
        try:
            folder.rmdir()  # empty once its last file went
        except OSError:
            pass
