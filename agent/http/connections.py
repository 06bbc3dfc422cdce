"""How many connections the HTTP door holds (a TCP site with a cap), and whether one is still open. At the cap one more is
answered ``503 busy`` and closed, so a flood of sockets costs the agent no more descriptors than
the cap (and a few being refused), however many come. How long each is held is aiohttp's
``keepalive_timeout`` (the server's setting): a connection that has not sent a whole request head
by then, from its start or its last answer (idle, or sending its headers slowly), is closed."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable

from aiohttp import web

from agent.limits import ThrottledLog, accept_batch

log = logging.getLogger(__name__)

LINGER = 0.5  # seconds a refused connection may take to send its request (read, so that it is not reset)
LINGERING = 16  # refused connections waiting so at most; beyond, the oldest is closed at once

_BODY = json.dumps({"error": "the agent has as many HTTP connections open as it allows: try again shortly",
                    "code": "busy"}).encode()
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY)


class CappedSite(web.BaseSite):
    """``web.TCPSite`` with at most ``cap`` open connections (aiohttp's own count of them)."""

    __slots__ = ("_host", "_port", "_cap", "_refused", "_full")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, cap: int) -> None:
        super().__init__(runner, backlog=accept_batch(cap))
        self._host = host
        self._port = port
        self._cap = cap
        self._refused: deque[Refused] = deque()
        self._full = ThrottledLog(log)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self._connection, self._host, self._port, backlog=self._backlog
        )

    def _connection(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        if len(server.connections) < self._cap:
            return server()
        self._full.warning("HTTP connections at the cap (%d): answering 503 busy", self._cap)
        return Refused(self._refused)


class Refused(asyncio.Protocol):
    """One connection over the cap: 503 busy at once, closed when its request has arrived (closing
    on unread bytes would reset it before the client read the answer) or after ``LINGER`` s."""

    def __init__(self, waiting: deque[Refused]) -> None:
        self._waiting = waiting
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(BUSY)
        self._waiting.append(self)
        if len(self._waiting) > LINGERING:
            self._waiting[0].close()
        asyncio.get_running_loop().call_later(LINGER, self.close)

    def data_received(self, data: bytes) -> None:
        self.close()

    def eof_received(self) -> bool:
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        if self in self._waiting:
            self._waiting.remove(self)
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def connection_of(request: web.Request) -> Callable[[], bool]:
    """Whether ``request``'s connection is still open, for the speak worker to ask from its own
    thread (aiohttp does not cancel a handler whose client left: its speech would go on)."""
    def connected() -> bool:
        transport = request.transport
        return transport is not None and not transport.is_closing()
    return connected
