"""On-disk audio cache with LRU eviction by total size.

Entries are whole WAV files named by a hash of the provider's cache key and the text; they
are written atomically, and an entry that fails to parse is deleted instead of served.

Beside an utterance's WAV, its encoded forms (``mp3``, ``opus``, ``flac``, ``pcm``: the formats of
agent/speak/encoding.py) are kept under the same hash with the format as the file's suffix: an MP3
encode of a 3 s sentence costs ~60 ms and an Opus one ~240 ms on a loaded 2-core machine, 10-50x a
cache hit's whole answer. They share the size bound and the LRU order with the WAVs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

from providers.common.audio import read_wav_pcm, wav_bytes
from providers.common.files import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAudio:
    pcm: bytes
    sample_rate: int


ENCODED = ("mp3", "opus", "flac", "pcm")  # the formats kept beside the WAV (a WAV is the entry itself)


def cache_name(key: str, text: str, fmt: str = "wav") -> str:
    """The entry's file name: the same hash for every format of one utterance, the format its suffix."""
    if fmt != "wav" and fmt not in ENCODED:
        raise ValueError(f"no cache entry for format {fmt!r}")
    return hashlib.sha256(f"{key}\n{text}".encode()).hexdigest() + "." + fmt


class AudioCache:
    """One directory, bounded by ``max_bytes``; least recently used entries go first."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}  # name -> bytes, in least-recently-used-first order
        self._scan()

    def _scan(self) -> None:
        if not self.directory.is_dir():
            return
        entries = []
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # left by a crash mid-write
            elif path.suffix == ".wav" or path.suffix[1:] in ENCODED:
                stat = path.stat()
                entries.append((stat.st_mtime_ns, path.name, stat.st_size))
        for _, name, size in sorted(entries):
            self._sizes[name] = size

    def get(self, key: str, text: str) -> CachedAudio | None:
        name = cache_name(key, text)
        path = self.directory / name
        with self._lock:
            if name not in self._sizes:
                return None
            try:
                pcm, rate = read_wav_pcm(path.read_bytes())
            except (OSError, wave.Error, EOFError) as exc:
                log.warning("dropping unreadable cache entry %s: %s", name, exc)
                self._sizes.pop(name, None)
                path.unlink(missing_ok=True)
                return None
            self._sizes[name] = self._sizes.pop(name)  # most recently used now
            try:
                os.utime(path)  # keep the order across restarts
            except OSError:
                pass
            return CachedAudio(pcm, rate)

    def get_encoded(self, key: str, text: str, fmt: str) -> bytes | None:
        """The utterance in ``fmt`` as ``put_encoded`` kept it, or None (an empty file: dropped)."""
        name = cache_name(key, text, fmt)
        path = self.directory / name
        with self._lock:
            if name not in self._sizes:
                return None
            try:
                data = path.read_bytes()
            except OSError as exc:
                data = b""
                log.warning("dropping unreadable cache entry %s: %s", name, exc)
            if not data:
                self._sizes.pop(name, None)
                path.unlink(missing_ok=True)
                return None
            self._sizes[name] = self._sizes.pop(name)
            try:
                os.utime(path)
            except OSError:
                pass
            return data

    def put(self, key: str, text: str, pcm: bytes, sample_rate: int) -> None:
        self._store(cache_name(key, text), wav_bytes(pcm, sample_rate))

    def put_encoded(self, key: str, text: str, fmt: str, data: bytes) -> None:
        """Keep the utterance's ``fmt`` form (``encoding.encode``'s whole file)."""
        if data:
            self._store(cache_name(key, text, fmt), data)

    def _store(self, name: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            atomic_write_bytes(self.directory / name, data)
            self._sizes.pop(name, None)
            self._sizes[name] = len(data)
            self._evict()

    def _evict(self) -> None:
        total = sum(self._sizes.values())
        while total > self.max_bytes and self._sizes:
            oldest = next(iter(self._sizes))
            total -= self._sizes.pop(oldest)
            (self.directory / oldest).unlink(missing_ok=True)
