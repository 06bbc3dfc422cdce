"""One catalog file over HTTP(S): into a staging folder beside the voices
(``out/voices/.downloads/``, the file's own name, so a provider's install sees ``.onnx`` or
``.pt``), through a ``.part`` file that a later try resumes with an HTTP Range request
(agent/transfer.py: the resumable transfer every download of the agent shares).

What comes from the network is hostile until checked: the bytes are capped (the catalog's size,
else the file's ``limit``, and the disk room), a file shorter than the catalog says or with
another MD5 is deleted, never renamed into place. A connection that breaks mid-file keeps its
``.part`` (the next try resumes it); every failure raises ``voice_download_failed`` naming the URL
and what to do."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from agent.errors import ServiceError
from agent.transfer import Fetch, Progress, Source, redirect_refusal, resume, size_of, stale_parts, urlopen
from providers.catalog import CatalogFile

__all__ = ["Fetch", "Progress", "disk_full", "failed", "fetch", "redirect_refusal", "room", "stale_parts", "urlopen"]

log = logging.getLogger(__name__)

FREE_MARGIN = 64 << 20  # bytes of the disk a download never takes (the household's other files)
SETTING = "the voices URL setting (a mirror must serve the catalog's paths)"
FULL = "free some space, or raise VOICE_AGENT_VOICE_DOWNLOAD_MAX_MB"


def source(url: str) -> Source:
    return Source(url, "voice_download_failed", SETTING, FULL)


def failed(url: str, why: str, todo: str) -> ServiceError:
    return source(url).failed(why, todo)


def disk_full(url: str, why: str) -> ServiceError:
    return source(url).disk_full(why)


def staged_name(file: CatalogFile) -> str:
    """The file's own name (the catalog's paths are checked to be plain relative ones)."""
    name = file.path.rsplit("/", 1)[-1]
    if not name or name.startswith(".") or "\\" in name:
        raise ServiceError("voice_download_failed", f"catalog file name {file.path!r} is not a plain file name")
    return name


def fetch(url: str, file: CatalogFile, staging: Path, *, how: Fetch = Fetch(), progress: Progress | None = None) -> Path:
    """``staging/<name>``, complete and checked, or ``ServiceError``. A ``.part`` already there is
    resumed (a server that ignores the Range header sends the whole file: it starts again)."""
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / staged_name(file)
    part = target.with_name(target.name + ".part")
    md5 = resume(source(url), part, "md5", size=file.size, cap=file.limit, how=how, progress=progress)
    _verify(url, part, file, md5)
    os.replace(part, target)
    return target


def _verify(url: str, part: Path, file: CatalogFile, md5: str) -> None:
    """Size and MD5 as the catalog says; a file that fails is deleted (trying again fetches it anew)."""
    size = size_of(part)
    if file.size is not None and size != file.size:
        part.unlink(missing_ok=True)
        raise failed(url, f"the file is truncated ({size} of {file.size} bytes)", "try again; if it "
                     "persists, the mirror's copy is damaged")
    if size == 0:
        part.unlink(missing_ok=True)
        raise failed(url, "the file is empty", "check the voices URL setting")
    if file.md5 is not None and md5 != file.md5.lower():
        part.unlink(missing_ok=True)
        raise failed(url, f"MD5 {md5} is not the catalog's {file.md5}",
                     "try again; if it persists, the mirror's copy is damaged or the catalog is outdated "
                     "(voice-agent voices catalog --update)")


def room(voices_dir: Path, max_bytes: int) -> int:
    """Bytes the voices may still take: under the cap for ``voices_dir`` (what it holds now) and
    under the disk's free space less a margin."""
    used = 0
    if voices_dir.is_dir():
        for root, _, names in os.walk(voices_dir):
            for name in names:
                try:
                    used += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    pass
    probe = voices_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free - FREE_MARGIN
    return max(0, min(max_bytes - used, free))
