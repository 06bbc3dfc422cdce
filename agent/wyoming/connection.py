"""One Wyoming connection as a transport: bounded events in (``wire``), events out, timeouts, and
its place under the door's connection cap (``limits``). What the events mean is the handler's.

- Idle: a connection that neither sends nor is sent an event for ``IDLE_TIMEOUT`` is closed.
  Home Assistant opens a connection per request (``describe``, then one per ``synthesize`` or
  stream) and closes it after the answer, so only a stream waits on the client, for the next
  text of a language model; a minute of silence there is an ended conversation.
- Slow: once an event's first byte is in, the whole event (header line, data, payload, at most a
  few hundred KiB) must follow within ``EVENT_TIMEOUT``; on a LAN it takes milliseconds.
- A client that stops reading: a write that cannot be flushed for ``IDLE_TIMEOUT`` ends the
  connection as if the client had gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.server import AsyncEventHandler

from agent.wyoming.limits import ConnectionGate
from agent.wyoming.wire import FramingError, read_event

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0
EVENT_TIMEOUT = 5.0

Write = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class Timeouts:
    idle: float = IDLE_TIMEOUT
    event: float = EVENT_TIMEOUT


class ClientGone(ConnectionError):
    """The client stopped reading what the connection writes."""


class EventHandler(Protocol):
    async def handle_event(self, event: Event) -> bool:
        """False ends the connection."""
        ...

    async def disconnect(self) -> None:
        """The connection has ended."""
        ...


class Connection(AsyncEventHandler):
    """What the ``wyoming`` library's server runs per client (its ``stop`` closes us too), with
    our own ``run``: the library's reads without bounds."""

    def __init__(
        self,
        gate: ConnectionGate,
        make_handler: Callable[[Write, str], EventHandler],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeouts: Timeouts = Timeouts(),
    ) -> None:
        super().__init__(reader, writer)
        self._gate = gate
        self._timeouts = timeouts
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "local"
        self._handler = make_handler(self.write_event, self.peer)
        self._loop = asyncio.get_running_loop()
        self._last_traffic = self._loop.time()

    async def handle_event(self, event: Event) -> bool:
        return await self._handler.handle_event(event)

    async def run(self) -> None:
        if not self._gate.enter(self.peer):
            await self._answer(Error(text="too many connections; try again later", code="busy").event())
            self.writer.close()
            return
        try:
            while (event := await self._next_event()) is not None:
                self._last_traffic = self._loop.time()
                if not await self._handler.handle_event(event):
                    break
        except ConnectionError:  # reset by the client while we read
            pass
        finally:
            self._gate.leave()
            await self._handler.disconnect()
            self.writer.close()

    async def write_event(self, event: Event) -> None:
        try:
            async with asyncio.timeout(self._timeouts.idle):
                await async_write_event(event, self.writer)
        except TimeoutError:
            raise ClientGone(f"the client read nothing for {self._timeouts.idle:.0f} s") from None
        self._last_traffic = self._loop.time()

    async def _next_event(self) -> Event | None:
        """The next event, or None when the connection is to end (the reason logged, once)."""
        first = await self._first_byte()
        if not first:
            return None
        try:
            async with asyncio.timeout(self._timeouts.event):
                return await read_event(self.reader, first)
        except TimeoutError:
            log.warning("Wyoming client %s closed: an event did not arrive whole within %.0f s", self.peer, self._timeouts.event)
        except FramingError as exc:
            log.warning("Wyoming client %s closed: %s: %s", self.peer, exc.code, exc)
            await self._answer(Error(text=str(exc), code=exc.code).event())
        return None

    async def _first_byte(self) -> bytes:
        """An event's first byte; empty at the end of the stream or after ``idle`` seconds of no
        traffic either way (audio still being written to the client is traffic)."""
        while True:
            quiet = self._loop.time() - self._last_traffic
            try:
                async with asyncio.timeout(self._timeouts.idle - quiet):
                    return await self.reader.read(1)
            except TimeoutError:
                if self._loop.time() - self._last_traffic >= self._timeouts.idle:
                    log.info("Wyoming client %s closed: idle for %.0f s", self.peer, self._timeouts.idle)
                    return b""

    async def _answer(self, event: Event) -> None:
        """A last word before closing: not waited on for long, not missed if it cannot go."""
        try:
            async with asyncio.timeout(self._timeouts.event):
                await async_write_event(event, self.writer)
        except (ConnectionError, TimeoutError):
            pass
