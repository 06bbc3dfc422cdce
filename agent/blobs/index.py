"""The files this home keeps that another node may fetch, by SHA-256: the voices folders (the
household's and each profile's: recorded samples and the datasets exported from them, RVC
``.pth`` and ``.index``, Kokoro voicepacks, Piper voices) and the training jobs' checkpoint
folders (a job that resumes on a worker fetches its checkpoint), the kinds of file listed in
``KEPT``. Nothing else of the home (settings, tokens, databases, logs) ever has a hash here.

Hashes are worked out lazily: a hash not known yet makes one walk of the folders that hashes
the files it has not seen, or that changed since (a file's hash is kept with its size and
modification time). Hidden files and folders (a download's ``.part``, the staging folder) and
symbolic links are never served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.layout import Layout

log = logging.getLogger(__name__)

KEPT = frozenset({".wav", ".list", ".txt", ".csv", ".pth", ".index", ".pt", ".onnx", ".json", ".npy", ".npz", ".ckpt",
                  ".safetensors"})
HASH = re.compile(r"[0-9a-f]{64}")  # fullmatch: "$" would let a trailing newline through
CHUNK = 1 << 20


def check_hash(text: str) -> str | None:
    """A SHA-256 in hex (either case), lower-cased; None when ``text`` is not one."""
    lowered = text.lower()
    return lowered if HASH.fullmatch(lowered) else None


def kept_roots(layout: Layout) -> list[Path]:
    """The folders whose files are kept for other nodes."""
    names = layout.names()
    return [layout.household_voices, *(layout.voices_dir(name) for name in names),
            *(layout.trainings_dir(name) for name in names)]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime_ns: int
    sha256: str


class BlobIndex:
    """Which kept file has a hash; ``find`` runs file work (call it off the event loop)."""

    def __init__(self, roots: Callable[[], list[Path]], kinds: frozenset[str] = KEPT) -> None:
        self._roots = roots
        self._kinds = kinds
        self._seen: dict[Path, _Seen] = {}
        self._lock = threading.Lock()  # one walk at a time; a second asker waits and finds its result

    def find(self, sha256: str) -> Path | None:
        """The kept file with this hash now, or None."""
        with self._lock:
            for path, seen in list(self._seen.items()):
                if seen.sha256 == sha256 and self._unchanged(path, seen):
                    return path
            self._walk()
            for path, seen in self._seen.items():
                if seen.sha256 == sha256:
                    return path
        return None

    def hash_of(self, path: Path) -> str | None:
        """The SHA-256 of a kept file, as ``find`` will know it (worked out once per version of the
        file); None when ``path`` is no kept file (outside the folders, hidden, a kind not kept)."""
        path = Path(os.path.abspath(path))
        if path.name.startswith(".") or path.suffix.lower() not in self._kinds:
            return None
        inside = next((root for root in self._roots() if path.is_relative_to(os.path.abspath(root))), None)
        if inside is None or any(part.startswith(".") for part in path.relative_to(os.path.abspath(inside)).parts):
            return None
        try:
            info = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        with self._lock:
            seen = self._seen.get(path)
            if seen is None or not self._unchanged(path, seen):
                seen = _Seen(info.st_size, info.st_mtime_ns, sha256_file(path))
                self._seen[path] = seen
        return seen.sha256

    def _unchanged(self, path: Path, seen: _Seen) -> bool:
        try:
            now = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISREG(now.st_mode) and (now.st_size, now.st_mtime_ns) == (seen.size, seen.mtime_ns)

    def _walk(self) -> None:
        """Hash what is new or changed; forget what is gone."""
        found: dict[Path, _Seen] = {}
        for path, info in self._files():
            seen = self._seen.get(path)
            if seen is None or (seen.size, seen.mtime_ns) != (info.st_size, info.st_mtime_ns):
                try:
                    seen = _Seen(info.st_size, info.st_mtime_ns, sha256_file(path))
                except OSError as exc:
                    log.debug("not indexing %s: %s", path, exc)
                    continue
            found[path] = seen
        self._seen = found

    def _files(self) -> Iterator[tuple[Path, os.stat_result]]:
        for root in self._roots():
            for folder, dirs, names in os.walk(root):  # symbolic links to folders are not followed
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in names:
                    if name.startswith(".") or Path(name).suffix.lower() not in self._kinds:
                        continue
                    path = Path(folder) / name
                    try:
                        info = os.lstat(path)
                    except OSError:
                        continue
                    if stat.S_ISREG(info.st_mode):
                        yield path, info
