"""Other nodes' files, fetched by SHA-256 from their HTTP door (``GET /api/blobs/<sha256>``, with
the household's token) into a bounded folder (``out/blobs/<sha256>``), least recently used first
out. A transfer goes through ``<sha256>.part`` (agent/transfer.py: a broken one resumes with a
Range request) and becomes the file only once its SHA-256 is the one asked for: a half or
corrupted transfer never does. Both directions use it: a worker fetches a job's inputs from the
job's home (``get``), a home takes the files a worker made for its job (``take``: fetched the same
way, then moved out of the cache to where the home keeps them).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

from agent.blobs.index import check_hash
from agent.errors import ServiceError
from agent.transfer import Fetch, Source, resume, stale_parts

log = logging.getLogger(__name__)


class BlobCache:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.RLock()  # one fetch at a time: two askers of one hash fetch it once

    def start(self) -> None:
        """``.part`` files no fetch touched for a day go."""
        stale_parts(self.folder)

    def path(self, sha256: str) -> Path | None:
        """The cached file, marked as just used; None when it is not here."""
        target = self.folder / _checked(sha256)
        try:
            os.utime(target)
        except FileNotFoundError:
            return None
        return target

    def get(self, sha256: str, node_url: str, token: str, size: int | None = None, how: Fetch = Fetch()) -> Path:
        """The file with this hash: from the cache, else fetched from the node at ``node_url``
        (``http://host:port``); ``ServiceError`` (``blob_fetch_failed``, ``blob_corrupt``,
        ``disk_full``) when it cannot be had."""
        sha256 = _checked(sha256)
        if size is not None and size > self.max_bytes:  # a stated size is the transfer's cap: not past the bound
            raise ServiceError("disk_full", f"the file {sha256} takes {size} bytes, more than the blob cache's "
                               f"{self.max_bytes}: raise VOICE_AGENT_BLOB_CACHE_MB")
        with self._lock:
            found = self.path(sha256)
            if found is not None:
                return found
            self.folder.mkdir(parents=True, exist_ok=True)
            part = self.folder / f"{sha256}.part"
            source = Source(f"{node_url.rstrip('/')}/api/blobs/{sha256}", "blob_fetch_failed",
                            "the node's address and VOICE_AGENT_HTTP_TOKEN",
                            "raise VOICE_AGENT_BLOB_CACHE_MB or free some space",
                            headers={"Authorization": f"Bearer {token}"}, redirects=False)
            got = resume(source, part, "sha256", size=size, cap=self.max_bytes, how=how)
            if got != sha256:
                part.unlink(missing_ok=True)
                raise ServiceError("blob_corrupt", f"the file fetched from {source.url} has SHA-256 {got}, not the "
                                   "one asked for: not kept; try again (if it persists, the node's copy changed "
                                   "or is damaged)", {"url": source.url})
            target = self.folder / sha256
            os.replace(part, target)
            self._evict(keep=target)
            return target

    def take(self, sha256: str, node_url: str, token: str, target: Path, size: int | None = None,
             how: Fetch = Fetch()) -> Path:
        """The file with this hash moved to ``target`` (a file of the caller's now, no longer the
        cache's), fetched as ``get`` fetches it when the cache lacks it."""
        with self._lock:  # a second asker of the hash fetches it again rather than lose it mid-move
            found = self.get(sha256, node_url, token, size, how)
            try:
                os.replace(found, target)
            except OSError:  # another file system: a copy, then the cache's copy goes
                shutil.copyfile(found, target)
                found.unlink(missing_ok=True)
        return target

    def _evict(self, keep: Path) -> None:
        """The least recently used files go until the cache fits (the one just fetched stays)."""
        files = []
        for entry in self.folder.iterdir():
            if entry.name.endswith(".part") or entry == keep:
                continue
            try:
                info = entry.stat()
            except FileNotFoundError:
                continue
            files.append((info.st_mtime, info.st_size, entry))
        total = sum(size for _, size, _ in files) + keep.stat().st_size
        for _, size, entry in sorted(files):
            if total <= self.max_bytes:
                break
            log.info("blob cache: removing %s, least recently used", entry.name)
            entry.unlink(missing_ok=True)
            total -= size


def _checked(sha256: str) -> str:
    found = check_hash(sha256)
    if found is None:
        raise ServiceError("invalid_params", f"{sha256[:80]!r} is not a SHA-256 (64 hex digits)")
    return found
