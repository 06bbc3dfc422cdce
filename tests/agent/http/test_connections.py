"""The HTTP door's connections: at most ``cap`` open (the cap-th is served, one more is answered
503 busy and closed, and a freed place is taken again); refused ones are closed once their request
has arrived, and at most LINGERING wait for it; a connection that has not sent a whole request
head within the idle timeout (silent, sending its head a byte at a time, or idle after an answer)
is closed."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from agent.http import connections
from agent.http.connections import CappedSite
from tests.mosquitto import free_port

GET = b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@asynccontextmanager
async def door(cap: int, idle: float = 60.0) -> AsyncIterator[tuple[int, web.AppRunner]]:
    app = web.Application()
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=idle)
    await runner.setup()
    port = free_port()
    await CappedSite(runner, "127.0.0.1", port, cap).start()
    try:
        yield port, runner
    finally:
        await runner.cleanup()


async def status_of(connection: Connection) -> int:
    reader, _ = connection
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    await asyncio.wait_for(reader.readexactly(length), 5)
    return int(head.split()[1])


async def served(port: int) -> Connection:
    """A connection that asked once and was answered 200: the door holds it (keep-alive)."""
    connection = await asyncio.open_connection("127.0.0.1", port)
    connection[1].write(GET)
    assert await status_of(connection) == 200
    return connection


async def closed(connection: Connection, within: float = 5.0) -> bool:
    reader, _ = connection
    try:
        while await asyncio.wait_for(reader.read(65536), within):
            pass
    except ConnectionResetError:
        pass
    return True


def test_the_cap_th_connection_is_served_and_one_more_is_told_busy() -> None:
    async def go() -> None:
        async with door(cap=2) as (port, runner):
            first = await served(port)
            second = await served(port)  # exactly at the cap
            one_more = await asyncio.open_connection("127.0.0.1", port)
            one_more[1].write(GET)
            reader = one_more[0]
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 503") and b"Retry-After" in head
            assert json.loads(await asyncio.wait_for(reader.read(), 5))["code"] == "busy"  # and closed
            first[1].close()
            assert runner.server is not None
            while len(runner.server.connections) >= 2:  # the door notices the first one gone
                await asyncio.sleep(0.01)
            third = await served(port)  # its place is taken again
            for _, writer in (second, third):
                writer.close()

    asyncio.run(asyncio.wait_for(go(), 30))


def test_a_refused_silent_connection_is_answered_and_closed() -> None:
    async def go() -> None:
        async with door(cap=1) as (port, _):
            held = await served(port)
            silent = await asyncio.open_connection("127.0.0.1", port)  # sends nothing
            assert await status_of(silent) == 503
            assert await closed(silent)
            held[1].close()

    asyncio.run(asyncio.wait_for(go(), 30))


def test_at_most_lingering_refused_connections_wait_the_oldest_closed_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "LINGER", 600.0)  # they would wait for their requests for ever

    async def go() -> None:
        async with door(cap=1) as (port, _):
            held = await served(port)
            refused = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections.LINGERING + 1)]
            assert await status_of(refused[-1]) == 503
            assert await status_of(refused[0]) == 503
            assert await closed(refused[0])  # closed to make room, long before its linger
            for _, writer in (held, *refused):
                writer.close()

    asyncio.run(asyncio.wait_for(go(), 30))


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    async def go() -> None:
        async with door(cap=4, idle=0.3) as (port, _):
            silent = await asyncio.open_connection("127.0.0.1", port)
            assert await closed(silent)
            answered = await served(port)
            assert await closed(answered)  # idle after its answer

    asyncio.run(asyncio.wait_for(go(), 30))


def test_a_head_sent_a_byte_at_a_time_is_closed_at_the_idle_timeout_though_bytes_keep_coming() -> None:
    async def go() -> int:
        async with door(cap=4, idle=0.3) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            ended = asyncio.ensure_future(closed((reader, writer), within=30))
            head = b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * 200 + b"\r\n\r\n"
            sent = 0
            for byte in head:  # 0.05 s apart: 11 s in all, never silent for 0.3 s
                if ended.done():
                    break
                try:
                    writer.write(bytes([byte]))
                    await writer.drain()
                except ConnectionError:
                    break
                sent += 1
                await asyncio.sleep(0.05)
            await ended
            return sent

    assert asyncio.run(asyncio.wait_for(go(), 30)) < 200  # closed long before the head was whole


def test_the_site_listens_where_it_is_told_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with door(cap=1) as (port, runner):
            assert runner.addresses == [("127.0.0.1", port)]  # that address only, not every interface
            assert [site.name for site in runner.sites] == [f"http://127.0.0.1:{port}"]
            held = await served(port)
            refused = await asyncio.open_connection("127.0.0.1", port)
            assert await status_of(refused) == 503
            held[1].close()
            refused[1].close()

    with caplog.at_level(logging.WARNING, "agent.http.connections"):
        asyncio.run(asyncio.wait_for(go(), 30))
    assert [r.getMessage() for r in caplog.records] == ["HTTP connections at the cap (1): answering 503 busy"]


class Transport(asyncio.Transport):
    """A refused connection's end, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed += 1


def test_a_refused_connection_is_closed_once_however_it_ends() -> None:
    """Its request arrives, then the connection is lost: one close, and it waits no more."""
    async def go() -> None:
        waiting: deque[connections.Refused] = deque()
        transport = Transport()
        refused = connections.Refused(waiting)
        refused.connection_made(transport)
        assert transport.written == connections.BUSY and list(waiting) == [refused]
        refused.data_received(GET)
        refused.connection_lost(None)
        refused.close()  # and its linger ends
        assert transport.closed == 1 and not waiting

    asyncio.run(go())


def test_the_oldest_refused_connection_is_closed_only_past_lingering() -> None:
    async def go() -> None:
        waiting: deque[connections.Refused] = deque()
        transports = [Transport() for _ in range(connections.LINGERING + 1)]
        for transport in transports[:-1]:
            connections.Refused(waiting).connection_made(transport)
        assert len(waiting) == connections.LINGERING and not any(t.closed for t in transports)  # exactly LINGERING wait
        connections.Refused(waiting).connection_made(transports[-1])
        assert [t.closed for t in transports] == [1] + [0] * connections.LINGERING
        assert len(waiting) == connections.LINGERING

    asyncio.run(go())
