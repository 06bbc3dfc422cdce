"""What bounds the Wyoming door as a whole: how many connections it holds, and how often it may
log what a flood makes happen thousands of times a second (connections refused, accepts failing
for lack of descriptors). One connection's own bounds are in ``connection`` and ``wire``.

(The HTTP door has its own; the two may move into one shared module.)
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64  # Home Assistant opens one per request; a household needs a handful
LOG_INTERVAL = 60.0  # seconds between two lines about the same flood
ACCEPT_FAILED = "socket.accept() out of system resource"  # what asyncio's accept loop reports on EMFILE


def connection_cap(max_connections: int = MAX_CONNECTIONS) -> int:
    """``max_connections``, or a quarter of the process's descriptor limit where that is lower:
    the door's sockets must never take the descriptors the other doors, the broker connection,
    the database and the providers' files need."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft // 4))


class Throttled:
    """A log line at most once per ``interval``; the next line says how many were held back."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def warning(self, message: str, *args: Any) -> bool:
        """Log ``message`` unless a line went out less than ``interval`` ago; True when logged."""
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._held += 1
            return False
        if self._held:
            message, args = f"{message} (and %d more since the last such line)", (*args, self._held)
        self._last, self._held = now, 0
        self._logger.warning(message, *args)
        return True


class ConnectionGate:
    """Counts the door's open connections; past ``cap`` a new one is refused (and logged once
    per interval)."""

    def __init__(self, cap: int, throttled: Throttled) -> None:
        self.cap = cap
        self.open = 0
        self._throttled = throttled

    def enter(self, peer: str) -> bool:
        if self.open >= self.cap:
            self._throttled.warning("Wyoming: %d connections open (the cap): closed a new one from %s", self.open, peer)
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


def quiet_accept_failures(throttled: Throttled) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An event loop exception handler: asyncio reports every failed ``accept`` (out of
    descriptors) with a traceback, once a second per listening socket; this makes it one line
    per interval. Everything else goes to the default handler."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_FAILED:
            throttled.warning("Wyoming server cannot accept connections: %s", context.get("exception"))
            return
        loop.default_exception_handler(context)

    return handle
