"""One connection's transport with in-memory streams: idle and slow clients closed, an unreadable
event answered and closed, the door's connection cap, a client that stops reading."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from wyoming.event import Event, async_read_event

from agent.wyoming.connection import ClientGone, Connection, Timeouts, Write
from agent.limits import ThrottledLog
from agent.wyoming.limits import ConnectionGate

PEER = ("127.0.0.1", 5000)
SLOW = Timeouts(idle=60, event=60)  # nothing times out within a test


class MemoryWriter:
    """What a StreamWriter offers ``async_write_event``; ``stalled``: drain never returns."""

    def __init__(self, stalled: bool = False) -> None:
        self.data = bytearray()
        self.closed = False
        self.stalled = stalled

    def get_extra_info(self, name: str) -> Any:
        return PEER if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.data += data

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    async def drain(self) -> None:
        if self.stalled:
            await asyncio.Event().wait()

    def close(self) -> None:
        self.closed = True

    def events(self) -> list[Event]:
        async def parse() -> list[Event]:
            reader = asyncio.StreamReader()
            reader.feed_data(bytes(self.data))
            reader.feed_eof()
            found = []
            while (event := await async_read_event(reader)) is not None:
                found.append(event)
            return found

        return asyncio.run(parse())


class Echo:
    """A handler that answers each event with a ``pong`` carrying its type."""

    def __init__(self, write: Write, peer: str) -> None:
        self.write, self.peer = write, peer
        self.seen: list[str] = []
        self.disconnected = False

    async def handle_event(self, event: Event) -> bool:
        self.seen.append(event.type)
        await self.write(Event("pong", {"text": event.type}))
        return event.type != "bye"

    async def disconnect(self) -> None:
        self.disconnected = True


class Run:
    """One connection run to its end over ``raw`` (EOF after it unless ``eof`` is False)."""

    def __init__(self, raw: bytes, timeouts: Timeouts = SLOW, eof: bool = True, gate: ConnectionGate | None = None,
                 stalled: bool = False) -> None:
        self.gate = gate or ConnectionGate(4, ThrottledLog(logging.getLogger("test")))
        self.writer = MemoryWriter(stalled)
        self.handler: Echo | None = None

        def make(write: Write, peer: str) -> Echo:
            self.handler = Echo(write, peer)
            return self.handler

        async def main() -> None:
            reader = asyncio.StreamReader()
            reader.feed_data(raw)
            if eof:
                reader.feed_eof()
            connection = Connection(self.gate, make, reader, self.writer, timeouts)  # type: ignore[arg-type]
            await asyncio.wait_for(connection.run(), 30)  # a guard: every case here ends by itself

        asyncio.run(main())
        self.events = self.writer.events()


def test_events_are_handed_over_until_the_client_closes() -> None:
    run = Run(b'{"type": "ping"}\n{"type": "describe"}\n')
    assert run.handler is not None and run.handler.seen == ["ping", "describe"]
    assert [e.data["text"] for e in run.events] == ["ping", "describe"]
    assert run.writer.closed and run.handler.disconnected and run.gate.open == 0


def test_the_handler_ends_the_connection_when_it_says_so() -> None:
    run = Run(b'{"type": "bye"}\n{"type": "ping"}\n', eof=False)
    assert run.handler is not None and run.handler.seen == ["bye"] and run.writer.closed


def test_an_idle_connection_is_closed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "agent.wyoming.connection"):
        run = Run(b'{"type": "ping"}\n', Timeouts(idle=0.05, event=60), eof=False)
    assert run.handler is not None and run.handler.seen == ["ping"] and run.writer.closed and run.gate.open == 0
    assert [r.getMessage() for r in caplog.records] == ["Wyoming client 127.0.0.1:5000 closed: idle for 0 s"]


def test_a_slow_event_is_closed_by_its_own_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "agent.wyoming.connection"):
        run = Run(b'{"type": "pi', Timeouts(idle=60, event=0.05), eof=False)
    assert run.handler is not None and run.handler.seen == [] and run.writer.closed
    assert [r.getMessage() for r in caplog.records] == [
        "Wyoming client 127.0.0.1:5000 closed: an event did not arrive whole within 0 s"]


def test_an_unreadable_event_is_answered_then_closed_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        run = Run(b'{"type": "ping"}\n[1, 2]\n{"type": "ping"}\n', eof=False)
    assert run.handler is not None and run.handler.seen == ["ping"]
    assert [e.type for e in run.events] == ["pong", "error"] and run.events[1].data["code"] == "invalid_payload"
    assert run.writer.closed and run.gate.open == 0
    assert run.events[1].data["text"] == "event header must be a JSON object"
    assert [r.getMessage() for r in caplog.records if "127.0.0.1:5000" in r.getMessage()] == [
        "Wyoming client 127.0.0.1:5000 closed: invalid_payload: event header must be a JSON object"]
    assert not any(r.exc_info for r in caplog.records)


def test_an_empty_line_is_an_empty_header_not_the_start_of_the_next() -> None:
    run = Run(b'\n{"type": "ping"}\n')
    assert [(e.type, e.data["code"], e.data["text"]) for e in run.events] == [
        ("error", "invalid_json", "the event header is empty")]
    assert run.handler is not None and run.handler.seen == [] and run.writer.closed


def test_the_handler_knows_its_peer_and_a_peer_without_an_address_is_local() -> None:
    run = Run(b'{"type": "ping"}\n')
    assert run.handler is not None and run.handler.peer == "127.0.0.1:5000"

    class Local(MemoryWriter):
        def get_extra_info(self, name: str) -> Any:
            return "" if name == "peername" else None  # a Unix socket's peer

    async def main() -> str:
        handlers: list[Echo] = []

        def make(write: Write, peer: str) -> Echo:
            handlers.append(Echo(write, peer))
            return handlers[0]

        Connection(ConnectionGate(1, ThrottledLog(logging.getLogger("test"))), make, asyncio.StreamReader(),
                   Local(), SLOW)  # type: ignore[arg-type]
        return handlers[0].peer

    assert asyncio.run(main()) == "local"


class Quiet(Echo):
    """A handler that answers nothing: only the events received are traffic."""

    async def handle_event(self, event: Event) -> bool:
        self.seen.append(event.type)
        return True


def test_events_that_get_no_answer_are_handed_over_all_the_same() -> None:
    async def main() -> list[str]:
        reader = asyncio.StreamReader()
        reader.feed_data(b'{"type": "ping"}\n{"type": "ping"}\n')
        reader.feed_eof()
        handlers: list[Quiet] = []

        def make(write: Write, peer: str) -> Quiet:
            handlers.append(Quiet(write, peer))
            return handlers[0]

        connection = Connection(ConnectionGate(1, ThrottledLog(logging.getLogger("test"))), make, reader,
                                MemoryWriter(), SLOW)  # type: ignore[arg-type]
        await asyncio.wait_for(connection.run(), 30)
        assert await connection.handle_event(Event("describe"))  # the library's entry point reaches the handler too
        return handlers[0].seen

    assert asyncio.run(main()) == ["ping", "ping", "describe"]


def test_the_last_word_to_a_client_that_does_not_read_is_not_waited_for() -> None:
    run = Run(b"[1, 2]\n", Timeouts(idle=60, event=0.05), eof=False, stalled=True)
    assert run.writer.closed


def test_a_length_past_the_cap_is_answered_and_closed() -> None:
    run = Run(b'{"type": "ping", "payload_length": 1000000000000}\n' + b"x" * 1000, eof=False)
    assert [e.data.get("code") for e in run.events] == ["payload_too_large"] and run.writer.closed


def test_connections_up_to_the_cap_are_served_one_more_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    gate = ConnectionGate(2, ThrottledLog(logging.getLogger("agent.wyoming.limits")))
    assert gate.enter("a") and gate.enter("b")
    with caplog.at_level(logging.WARNING):
        refused = Run(b'{"type": "ping"}\n', gate=gate)
        again = Run(b'{"type": "ping"}\n', gate=gate)
    assert refused.handler is not None and refused.handler.seen == [] and not refused.handler.disconnected
    assert [(e.type, e.data["code"], e.data["text"]) for e in refused.events] == [
        ("error", "busy", "too many connections; try again later")] and refused.writer.closed
    assert gate.open == 2, "a refused connection leaves the count as it was"
    assert again.events[0].data["code"] == "busy"
    assert [r.getMessage() for r in caplog.records if "connections open" in r.getMessage()] == [
        "Wyoming: 2 connections open (the cap): closed a new one from 127.0.0.1:5000"], "once per interval"
    gate.leave()
    served = Run(b'{"type": "ping"}\n', gate=gate)
    assert [e.type for e in served.events] == ["pong"] and gate.open == 1


def test_a_client_that_stops_reading_is_gone() -> None:
    async def main() -> None:
        writer = MemoryWriter(stalled=True)
        connection = Connection(ConnectionGate(1, ThrottledLog(logging.getLogger("test"))), Echo, asyncio.StreamReader(),
                                writer, Timeouts(idle=0.05, event=60))  # type: ignore[arg-type]
        with pytest.raises(ClientGone, match="^the client read nothing for 0 s$"):
            await asyncio.wait_for(connection.write_event(Event("audio-chunk")), 30)

    asyncio.run(main())


def test_a_reset_while_reading_ends_the_connection_quietly() -> None:
    async def main() -> Echo:
        reader = asyncio.StreamReader()
        reader.set_exception(ConnectionResetError("reset by peer"))
        handlers: list[Echo] = []

        def make(write: Write, peer: str) -> Echo:
            handlers.append(Echo(write, peer))
            return handlers[0]

        gate = ConnectionGate(1, ThrottledLog(logging.getLogger("test")))
        connection = Connection(gate, make, reader, MemoryWriter(), SLOW)  # type: ignore[arg-type]
        await asyncio.wait_for(connection.run(), 30)
        return handlers[0]

    assert asyncio.run(main()).disconnected
