"""What a door needs to stay within the process's means under a flood of connections, shared by
the server doors (HTTP, Wyoming): a log line that repeats at most once per interval, a door's
connection cap below the open-file limit (raised to what the hard limit allows at start), and asyncio's failed accepts told as such a line instead
of a traceback each."""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

WANTED_FILES = 4096  # the soft open-file limit raised to at start (the doors' caps are an eighth of it)
DOOR_SHARE = 8  # a door holds at most an eighth of the open-file limit in connections (see accept_batch)


class ThrottledLog:
    """A log line that is written at most once per ``interval`` seconds: the first at once, the
    ones after it counted and told with the next line written, so a flood of failures (wrong
    tokens, refused connections) is a line a minute in the journal, not a line a try."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held = 0
        self._lock = threading.Lock()  # a door's loop, or the services' threads

    def warning(self, message: str, *args: Any) -> bool:
        """Log now, or count it for the next line; whether it was written."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self._interval:
                self._held += 1
                return False
            held, self._held, self._last = self._held, 0, now
        if held:
            message += f" ({held} more like it in the last {self._interval:.0f} s)"
        self._logger.warning(message, *args)
        return True


def open_file_limit() -> int:
    """The process's soft limit of open descriptors (systemd's default is 1024)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_file_limit(wanted: int = WANTED_FILES) -> int:
    """Raise the soft limit of open descriptors to ``wanted``, at most the hard limit (any process
    may): under systemd's or a shell's soft 1024 the doors' caps would be lower than their settings
    for no reason the user could act on. Never lowers it; one INFO line when it changed. The soft
    limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
            return soft
        log.info("open-file limit raised from %d to %d (hard limit %s)", soft, target,
                 "unlimited" if hard == resource.RLIM_INFINITY else hard)
        return target
    return soft


def connection_cap(wanted: int, limit: int | None = None) -> int:
    """A door's connection cap: what its setting asks, at most an eighth of the open-file limit.
    With ``accept_batch`` a flooded door then holds at most a quarter of the limit, two doors half,
    and the agent keeps the rest for its own work (a recording, the samples' database, the broker)."""
    limit = open_file_limit() if limit is None else limit
    if limit == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, limit // DOOR_SHARE))


def accept_batch(cap: int) -> int:
    """The listening backlog for a door with this cap. asyncio accepts up to ``backlog``
    connections at a time before any is answered, and a refused one's descriptor is freed a loop
    turn later: over the cap, a door holds its cap plus two batches, so a batch is half the cap."""
    return max(1, min(128, cap // 2))


def log_accept_failures(loop: asyncio.AbstractEventLoop, lines: ThrottledLog, door: str) -> None:
    """asyncio logs a traceback for every accept that fails (out of descriptors: dozens at a time,
    and again each time it retries) and for each retry still pending when the listening socket
    has closed: these become ``lines`` (one per interval); anything else goes to the default handler."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if is_accept_failure(context):
            error = context.get("exception")
            reason = getattr(error, "strerror", None) or error or context.get("message")
            lines.warning("%s cannot accept connections: %s", door, reason)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def is_accept_failure(context: dict[str, Any]) -> bool:
    """asyncio's own words for it: 'socket.accept() out of system resource', or the retry it
    scheduled (``_start_serving``) failing."""
    return str(context.get("message", "")).startswith("socket.accept()") or \
        "_start_serving" in repr(context.get("handle", ""))
