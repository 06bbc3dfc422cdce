"""One file over HTTP(S) into a ``.part`` that a later try resumes with a Range request, hashed
as the bytes arrive; the standard library only. Two kinds of file use it: catalog voices
(agent/voices/download.py, MD5 against the catalog) and other nodes' files by content hash
(agent/blobs/cache.py, SHA-256 against the name). The caller checks the digest and renames: a
``.part`` is never a file of the household's until then.

What comes from the network is hostile until checked: the bytes are capped (the expected size,
else a limit, and the disk room); a broken connection keeps its ``.part`` for the next try; a
server that sends more than expected leaves nothing. Every failure is a ``ServiceError`` with
the source's code, naming the URL and what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import __version__
from agent.errors import ServiceError

log = logging.getLogger(__name__)

CHUNK = 4 << 20  # bytes per read: large reads keep pace with curl
Progress = Callable[[int], None]  # told of the bytes written so far (resumed ones included)
MAX_REDIRECTS = 5  # Hugging Face's resolve URLs redirect once, to their CDN
MIN_RATE = 32 << 10  # bytes a second, on average, that a download must keep up after GRACE (else: try again)
GRACE = 60.0  # seconds a download may take to get going before MIN_RATE applies


@dataclass(frozen=True)
class Fetch:
    """How one file is fetched: timeouts (connect and each read, seconds), the most bytes the
    disk may still take for it (``room``: worked out by the caller), and the slowest a download
    may go: a server that trickles a byte now and then would hold a download worker for hours,
    so after ``grace`` seconds its average must stay at ``min_rate`` bytes a second (a later try
    resumes it)."""

    timeout: float = 30.0
    room: int | None = None
    min_rate: int = MIN_RATE
    grace: float = GRACE
    clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class Source:
    """Where a file comes from, and how its failures are said: ``code`` of the ``ServiceError``,
    ``setting`` what the user should check (``the voices URL setting``), ``full`` what frees room.
    ``redirects``: whether a redirect is followed at all (never with a token in the headers: it
    would go wherever the redirect points)."""

    url: str
    code: str
    setting: str
    full: str
    headers: dict[str, str] = field(default_factory=dict)
    redirects: bool = True

    def failed(self, why: str, todo: str) -> ServiceError:
        return ServiceError(self.code, f"downloading {self.url} failed: {why}; {todo}", {"url": self.url})

    def disk_full(self, why: str) -> ServiceError:
        return ServiceError("disk_full", f"not downloading {self.url}: {why}; {self.full}", {"url": self.url})


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
            raise _RedirectRefused(req.full_url, f"more than {MAX_REDIRECTS} redirects")
        why = redirect_refusal(req.origin_req_host, newurl)  # the first request's host, all along the chain
        if why is not None:
            raise _RedirectRefused(req.full_url, f"{why} is not followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        raise _RedirectRefused(req.full_url, f"a redirect to {newurl} is not followed")


class _RedirectRefused(Exception):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(why)
        self.url = url
        self.why = why


_OPENER = urllib.request.build_opener(_Redirects)
_DIRECT = urllib.request.build_opener(_NoRedirects)


def urlopen(request: urllib.request.Request, timeout: float, source: Source | None = None) -> Any:
    """``urllib.request.urlopen`` with checked redirects (none for a ``source`` that follows none)."""
    opener = _DIRECT if source is not None and not source.redirects else _OPENER
    try:
        return opener.open(request, timeout=timeout)
    except _RedirectRefused as exc:
        if source is None:
            raise ServiceError("voice_download_failed", f"downloading {exc.url} failed: {exc.why}; check the "
                               "voices URL setting", {"url": exc.url}) from None
        raise source.failed(exc.why, f"check {source.setting}") from None


def new_digest(algorithm: str) -> Any:
    return hashlib.new(algorithm, usedforsecurity=False)


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def hash_file(path: Path, digest: Any) -> Any:
    with open(path, "rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest


def resume(source: Source, part: Path, algorithm: str, *, size: int | None = None, cap: int | None = None,
           how: Fetch = Fetch(), progress: Progress | None = None) -> str:
    """``part`` made whole: what is there already kept (when it can be part of the file) and the rest
    fetched with a Range request; the hex digest of the whole. ``size`` is what the file must
    have (when known), ``cap`` the most it may have. The caller checks the digest."""
    cap = size if size is not None else cap
    offset = size_of(part)
    if size is not None and how.room is not None and size - offset > how.room:
        raise source.disk_full(f"it takes {size - offset} more bytes and there is room for {how.room} more")
    if cap is not None and offset > cap:
        part.unlink()
        offset = 0
    digest = hash_file(part, new_digest(algorithm)) if offset else new_digest(algorithm)
    if size is None or offset < size:
        digest = _download(source, part, offset, cap, how, progress, digest, algorithm)
    return str(digest.hexdigest())


def _download(source: Source, part: Path, offset: int, cap: int | None, how: Fetch, progress: Progress | None,
              digest: Any, algorithm: str) -> Any:
    """The body appended to ``part``; the digest of the whole file so far."""
    url = source.url
    headers = {"User-Agent": f"voice-agent/{__version__}", "Accept-Encoding": "identity", **source.headers}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(urllib.request.Request(url, headers=headers), how.timeout, source)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is longer than the file: start again
            part.unlink(missing_ok=True)
            return _download(source, part, 0, cap, how, progress, new_digest(algorithm), algorithm)
        raise source.failed(f"HTTP {exc.code} {exc.reason}", f"check {source.setting} and try again") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise source.failed(f"cannot connect ({reason})", f"check the network or {source.setting}, then try "
                            "again") from None
    with response:
        if response.status == 206:
            start = range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                part.unlink(missing_ok=True)
                raise source.failed(f"the server answered bytes from {start}, not {offset}", "try again")
        elif response.status == 200:
            if offset:  # the whole file: Range ignored
                offset, digest = 0, new_digest(algorithm)
        else:
            raise source.failed(f"unexpected HTTP {response.status}", "try again later")
        length = response.headers.get("Content-Length")
        if cap is not None and length is not None and length.isdigit() and offset + int(length) > cap:
            part.unlink(missing_ok=True)
            raise source.failed(f"the server sends {offset + int(length)} bytes, more than the {cap} expected",
                                f"check {source.setting}")
        end = offset + int(length) if length is not None and length.isdigit() else None
        done = _copy(source, response, part, offset, cap, how, progress, digest)
        if end is not None and done < end:  # the body stopped short of its Content-Length: the connection broke
            raise source.failed(f"the connection broke after {done} of {end} bytes", "try again: the download "
                                "resumes where it stopped")
    return digest


class _Hasher:
    """The digest of the bytes as they arrive, on a thread of its own: hashing 60 MB costs a third
    of fetching it from a LAN mirror, and hashlib lets go of the GIL, so it overlaps the next read
    instead of adding to it (bench/RESULTS.md "Voice downloads")."""

    def __init__(self, digest: Any) -> None:
        self._digest = digest
        self._blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, name="download-digest", daemon=True)
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


def range_start(header: str) -> int:
    """``bytes 100-199/200`` -> 100; -1 when it cannot be read."""
    unit, _, spec = header.strip().partition(" ")
    first = spec.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else -1


def _copy(source: Source, response: http.client.HTTPResponse, part: Path, offset: int, cap: int | None,
          how: Fetch, progress: Progress | None, digest: Any) -> int:
    """The body onto ``part`` (appended after ``offset`` bytes, else written anew); a broken or
    too slow connection keeps what came, for the next try to resume. More than ``cap`` bytes in
    all, or more than ``how.room`` new ones, and nothing is kept."""
    hasher = _Hasher(digest)
    try:
        return _copy_into(source, response, part, offset, cap, how, progress, hasher)
    finally:
        hasher.close()


def _copy_into(source: Source, response: http.client.HTTPResponse, part: Path, offset: int, cap: int | None,
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
                raise source.failed(f"the connection broke after {done} bytes ({type(exc).__name__}: {exc})",
                                    "try again: the download resumes where it stopped") from None
            if not block:
                write()
                break
            done += len(block)
            if cap is not None and done > cap:
                out.close()
                part.unlink(missing_ok=True)
                raise source.failed(f"the server sent more than the {cap} bytes expected", f"check {source.setting}")
            if how.room is not None and done - offset > how.room:
                out.close()
                part.unlink(missing_ok=True)
                raise source.disk_full(f"there is room for {how.room} more bytes")
            pending.append(block)
            pending_size += len(block)
            elapsed = how.clock() - began
            if elapsed > how.grace and done - offset < how.min_rate * elapsed:
                write()
                raise source.failed(f"it came at {(done - offset) / elapsed / 1024:.1f} KiB/s, slower than the "
                                    f"{how.min_rate // 1024} KiB/s a download must keep up", "try again later "
                                    "(or from another source): the download resumes where it stopped")
            if pending_size >= CHUNK:
                write()
    return done


def stale_parts(folder: Path, max_age: float = 86400.0) -> None:
    """At start-up: ``.part`` files no transfer touched for ``max_age`` seconds (a day): a file
    nobody asked for again, whose half would hold its space for ever."""
    if not folder.is_dir():
        return
    now = time.time()
    for part in folder.rglob("*.part"):
        try:
            if now - part.stat().st_mtime > max_age:
                log.info("removing %s, a download not resumed for a day", part)
                part.unlink()
        except OSError:
            pass
