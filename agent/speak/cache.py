"""On-disk audio cache with LRU eviction by total size.

Entries are whole WAV files named by a hash of the provider's cache key and the text; they
are written atomically, and an entry that fails to parse is deleted instead of served.
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


def cache_name(key: str, text: str) -> str:
    return hashlib.sha256(f"{key}\n{text}".encode()).hexdigest() + ".wav"


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
            elif path.suffix == ".wav":
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

    def put(self, key: str, text: str, pcm: bytes, sample_rate: int) -> None:
        data = wav_bytes(pcm, sample_rate)
        if len(data) > self.max_bytes:
            return
        name = cache_name(key, text)
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
