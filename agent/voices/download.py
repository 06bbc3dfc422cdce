"""One catalog file over HTTP(S), with the standard library: into a staging folder beside the
voices (``out/voices/.downloads/``, the file's own name, so a provider's install sees ``.onnx`` or
``.pt``), through a ``.part`` file that a later try resumes with an HTTP Range request.

What comes from the network is hostile until checked: the bytes are capped (the catalog's size,
else the file's ``limit``, and the disk room), a file shorter than the catalog says or with
another MD5 is deleted, never renamed into place. A connection that breaks mid-file keeps its
``.part`` (the next try resumes it); every failure raises ``voice_download_failed`` naming the URL
and what to do."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
import os
import queue
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import __version__
from agent.errors import ServiceError
from providers.catalog import CatalogFile

log = logging.getLogger(__name__)

CHUNK = 4 << 20  # bytes per read: large reads keep pace with curl
FREE_MARGIN = 64 << 20  # bytes of the disk a download never takes (the household's other files)
Progress = Callable[[int], None]  # told of the bytes written so far (resumed ones included)
MAX_REDIRECTS = 5  # Hugging Face's resolve URLs redirect once, to their CDN
MIN_RATE = 32 << 10  # bytes a second, on average, that a download must keep up after GRACE (else: try again)
GRACE = 60.0  # seconds a download may take to get going before MIN_RATE applies


@dataclass(frozen=True)
class Fetch:
    """How one file is fetched: timeouts (connect and each read, seconds), the most bytes the
    disk may still take for it (``room``: the voices' cap and the free space, worked out by the
    caller for the whole voice), and the slowest a download may go: a mirror that trickles a byte
    now and then would hold one of the two download workers for hours, so after ``grace``
    seconds its average must stay at ``min_rate`` bytes a second (a later try resumes it)."""

    timeout: float = 30.0
    room: int | None = None
    min_rate: int = MIN_RATE
    grace: float = GRACE
    clock: Callable[[], float] = time.monotonic


def redirect_refusal(origin_host: str, url: str) -> str | None:
    """Why a download may not follow a redirect to ``url`` (None: it may). Only http and https; a
    catalog's host may hand over to another (Hugging Face to its CDN), but a mirror on the
    internet may not send the agent into the household's own network (loopback, link-local such
    as a cloud's metadata address, private LAN addresses): that needs a base URL there itself."""
    target = urllib.parse.urlsplit(url)
    if target.scheme not in ("http", "https"):
        return f"a redirect to a {target.scheme or 'relative'}: URL"
    if not _is_public(origin_host) or _is_public(target.hostname or ""):
        return None
    return f"a redirect from {origin_host} to the local address {target.hostname}"


def _is_public(host: str) -> bool:
    """Whether every address ``host`` names is a global one (a name that does not resolve counts
    as public: the connection fails on its own)."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in socket.getaddrinfo(host, None)]
        except (OSError, UnicodeError, ValueError):
            return True
    return all(address.is_global for address in addresses)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, checked (``redirect_refusal``) and at most ``MAX_REDIRECTS``."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if len(getattr(req, "redirect_dict", {})) >= MAX_REDIRECTS:
            raise failed(req.full_url, f"more than {MAX_REDIRECTS} redirects", "check the voices URL setting")
        why = redirect_refusal(req.origin_req_host, newurl)  # the first request's host, all along the chain
        if why is not None:
            raise failed(req.full_url, f"{why} is not followed", "check the voices URL setting")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_Redirects)


def urlopen(request: urllib.request.Request, timeout: float) -> Any:
    """``urllib.request.urlopen`` with checked redirects (every fetch of a catalog or its files)."""
    return _OPENER.open(request, timeout=timeout)


def failed(url: str, why: str, todo: str) -> ServiceError:
    return ServiceError("voice_download_failed", f"downloading {url} failed: {why}; {todo}", {"url": url})


def disk_full(url: str, why: str) -> ServiceError:
    return ServiceError("disk_full", f"not downloading {url}: {why}; free some space, or raise "
                                     "VOICE_AGENT_VOICE_DOWNLOAD_MAX_MB", {"url": url})


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
    cap = file.size if file.size is not None else file.limit
    offset = _size(part)
    if file.size is not None and how.room is not None and file.size - offset > how.room:
        raise disk_full(url, f"it takes {file.size - offset} more bytes and the voices may take {how.room} more")
    if (file.size is not None and offset > file.size) or (cap is not None and offset > cap):
        part.unlink()
        offset = 0
    digest = hashlib.md5(usedforsecurity=False)  # as the bytes arrive: no second pass over 60 MB
    if offset:
        _hash_file(part, digest)
    if file.size is None or offset < file.size:
        digest = _download(url, part, offset, cap, how, progress, digest)
    _verify(url, part, file, digest.hexdigest())
    os.replace(part, target)
    return target


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _hash_file(path: Path, digest: Any) -> None:
    with open(path, "rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)


def _download(url: str, part: Path, offset: int, cap: int | None, how: Fetch, progress: Progress | None,
              digest: Any) -> Any:
    """The body appended to ``part``; the MD5 of the whole file so far."""
    headers = {"User-Agent": f"voice-agent/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(urllib.request.Request(url, headers=headers), timeout=how.timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is longer than the file: start again
            part.unlink(missing_ok=True)
            return _download(url, part, 0, cap, how, progress, hashlib.md5(usedforsecurity=False))
        raise failed(url, f"HTTP {exc.code} {exc.reason}", "check the voices URL setting (a mirror must serve "
                     "the catalog's paths) and try again") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise failed(url, f"cannot connect ({reason})", "check the network or the voices URL setting, then try "
                     "again") from None
    with response:
        if response.status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                part.unlink(missing_ok=True)
                raise failed(url, f"the server answered bytes from {start}, not {offset}", "try again")
        elif response.status == 200:
            if offset:  # the whole file: Range ignored
                offset, digest = 0, hashlib.md5(usedforsecurity=False)
        else:
            raise failed(url, f"unexpected HTTP {response.status}", "try again later")
        length = response.headers.get("Content-Length")
        if cap is not None and length is not None and length.isdigit() and offset + int(length) > cap:
            part.unlink(missing_ok=True)
            raise failed(url, f"the server sends {offset + int(length)} bytes, more than the {cap} expected",
                         "check the voices URL setting (is it a mirror of the catalog's files?)")
        end = offset + int(length) if length is not None and length.isdigit() else None
        done = _copy(url, response, part, offset, cap, how, progress, digest)
        if end is not None and done < end:  # the body stopped short of its Content-Length: the connection broke
            raise failed(url, f"the connection broke after {done} of {end} bytes", "try again: the download "
                         "resumes where it stopped")
    return digest


class _Hasher:
    """The MD5 of the bytes as they arrive, on a thread of its own: hashing 60 MB costs a third of
    fetching it from a LAN mirror, and hashlib lets go of the GIL, so it overlaps the next read
    instead of adding to it (bench/RESULTS.md "Voice downloads")."""

    def __init__(self, digest: Any) -> None:
        self._digest = digest
        self._blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, name="download-md5", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (block := self._blocks.get()) is not None:
            self._digest.update(block)

    def update(self, block: bytes) -> None:
        self._blocks.put(block)

    def close(self) -> None:
        """Returns once every block given is in the digest."""
        self._blocks.put(None)
        self._thread.join()


def _range_start(header: str) -> int:
    """``bytes 100-199/200`` -> 100; -1 when it cannot be read."""
    unit, _, spec = header.strip().partition(" ")
    first = spec.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else -1


def _copy(url: str, response: http.client.HTTPResponse, part: Path, offset: int, cap: int | None,
          how: Fetch, progress: Progress | None, digest: Any) -> int:
    """The body onto ``part`` (appended after ``offset`` bytes, else written anew); a broken or
    too slow connection keeps what came, for the next try to resume. More than ``cap`` bytes in
    all, or more than ``how.room`` new ones, and nothing is kept."""
    hasher = _Hasher(digest)
    try:
        return _copy_into(url, response, part, offset, cap, how, progress, hasher)
    finally:
        hasher.close()


def _copy_into(url: str, response: http.client.HTTPResponse, part: Path, offset: int, cap: int | None,
               how: Fetch, progress: Progress | None, digest: _Hasher) -> int:
    """Reads what has arrived (``read1``: one socket read, so a trickle cannot keep one read
    going for hours) and writes it in blocks of up to ``CHUNK``; the rate is judged after each read."""
    done = offset
    began = how.clock()
    pending: list[bytes] = []
    pending_size = 0
    with open(part, "r+b" if offset else "wb") as out:
        out.seek(offset)
        out.truncate()

        def write() -> None:
            nonlocal pending, pending_size
            if pending:
                block = b"".join(pending) if len(pending) > 1 else pending[0]
                out.write(block)
                digest.update(block)
                pending, pending_size = [], 0
                if progress is not None:
                    progress(done)

        while True:
            try:
                block = response.read1(CHUNK)
            except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, IncompleteRead
                write()
                out.flush()
                raise failed(url, f"the connection broke after {done} bytes ({type(exc).__name__}: {exc})",
                             "try again: the download resumes where it stopped") from None
            if not block:
                write()
                break
            done += len(block)
            if cap is not None and done > cap:
                out.close()
                part.unlink(missing_ok=True)
                raise failed(url, f"the server sent more than the {cap} bytes expected",
                             "check the voices URL setting (is it a mirror of the catalog's files?)")
            if how.room is not None and done - offset > how.room:
                out.close()
                part.unlink(missing_ok=True)
                raise disk_full(url, f"the voices may take {how.room} more bytes")
            pending.append(block)
            pending_size += len(block)
            elapsed = how.clock() - began
            if elapsed > how.grace and done - offset < how.min_rate * elapsed:
                write()
                raise failed(url, f"it came at {(done - offset) / elapsed / 1024:.1f} KiB/s, slower than the "
                             f"{how.min_rate // 1024} KiB/s a download must keep up", "try again later or use "
                             "another mirror: the download resumes where it stopped")
            if pending_size >= CHUNK:
                write()
    return done


def _verify(url: str, part: Path, file: CatalogFile, md5: str) -> None:
    """Size and MD5 as the catalog says; a file that fails is deleted (trying again fetches it anew)."""
    size = _size(part)
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


def stale_parts(staging: Path, max_age: float = 86400.0) -> None:
    """At start-up: ``.part`` files no download touched for ``max_age`` seconds (a day): a voice
    nobody asked for again, whose half file would hold its space for ever."""
    if not staging.is_dir():
        return
    now = time.time()
    for part in staging.rglob("*.part"):
        try:
            if now - part.stat().st_mtime > max_age:
                log.info("removing %s, a download not resumed for a day", part)
                part.unlink()
        except OSError:
            pass
