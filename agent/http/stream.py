"""The core's events and state documents as a server-sent event stream (``GET /api/events``).

The EventBus and the StateBoard call their listeners on the services' threads (the speak worker,
the job runner's follower, the record path); the hub turns each into JSON there and hands it to
the event loop with ``call_soon_threadsafe``; on the loop it goes to every open stream that wants
it. A stream that falls far behind is ended (its EventSource reconnects and starts again from the
state documents) instead of holding the agent's memory."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent.events import EventBus, StateBoard

log = logging.getLogger(__name__)

BACKLOG = 500  # messages a stream may have waiting before it is ended
PING_SECONDS = 15.0  # an SSE comment this often: proxies keep the stream open, a gone client is noticed
HOUSEHOLD = "gpu"  # the state document and events every profile's stream carries


@dataclass(eq=False)
class Subscriber:
    profile: str
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(BACKLOG))

    def wants(self, key: str) -> bool:
        return key in (self.profile, HOUSEHOLD)


class EventHub:
    def __init__(self, events: EventBus, state: StateBoard) -> None:
        self._events = events
        self._state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscriber] = set()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start hearing the core (once, from the loop that serves the streams)."""
        if self._loop is not None:
            return
        self._loop = loop
        self._events.listen(self._on_event)
        self._state.watch(self._on_state)

    # -- the services' threads -------------------------------------------------------------
    def _on_event(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        self._post(profile, event_message(profile, name, data, when))

    def _on_state(self, key: str, document: dict[str, Any]) -> None:
        self._post(key, state_message(key, document))

    def _post(self, key: str, message: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._fan_out, key, message)
        except RuntimeError:  # the loop closed in between: the agent is stopping
            pass

    # -- the loop ----------------------------------------------------------------------------
    def _fan_out(self, key: str, message: str) -> None:
        for subscriber in list(self._subscribers):
            if not subscriber.wants(key):
                continue
            try:
                subscriber.queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("an event stream of %s fell %d messages behind; ending it", subscriber.profile, BACKLOG)
                self._end(subscriber)

    def subscribe(self, profile: str) -> Subscriber:
        subscriber = Subscriber(profile)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def _end(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        while not subscriber.queue.empty():
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)

    def close_all(self) -> None:
        """End every stream (the server is shutting down: their handlers return)."""
        for subscriber in list(self._subscribers):
            self._end(subscriber)

    def snapshot(self, profile: str) -> list[str]:
        """The documents a new stream starts with: the profile's state and the GPU's."""
        return [state_message(key, self._state.get(key)) for key in (profile, HOUSEHOLD)]


def event_message(profile: str, name: str, data: dict[str, Any], when: float) -> str:
    return json.dumps({"kind": "event", "profile": profile, "type": name, "time": when, "data": data}, default=str)


def state_message(key: str, document: dict[str, Any]) -> str:
    return json.dumps({"kind": "state", "key": key, "data": document}, default=str)


async def serve(request: web.Request, hub: EventHub, profile: str) -> web.StreamResponse:
    """One stream: the profile's state documents, then its events as they happen, until the
    client goes or the agent stops."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    subscriber = hub.subscribe(profile)  # before the snapshot: nothing falls between the two
    try:
        for document in hub.snapshot(profile):
            await response.write(f"data: {document}\n\n".encode())
        while True:
            try:
                message = await asyncio.wait_for(subscriber.queue.get(), PING_SECONDS)
            except TimeoutError:
                await response.write(b": ping\n\n")
                continue
            if message is None:
                break
            await response.write(f"data: {message}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away
    finally:
        hub.unsubscribe(subscriber)
    return response
