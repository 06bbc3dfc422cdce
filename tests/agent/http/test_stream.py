"""The event hub between the services' threads and the HTTP door's loop: events emitted on other
threads reach each open stream on the loop, in order, only the profile's own (and the GPU's); a
stream that falls behind is ended instead of growing; shutting down ends every stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.events import EventBus, StateBoard
from agent.http import stream
from agent.http.stream import EventHub


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 10))


async def take(queue: asyncio.Queue[str | None], count: int) -> list[dict[str, Any]]:
    return [json.loads(item) for item in [await queue.get() for _ in range(count)] if item is not None]


def test_events_from_service_threads_reach_the_profiles_stream_in_order() -> None:
    events, state = EventBus(), StateBoard()
    hub = EventHub(events, state)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        hub.attach(asyncio.get_running_loop())
        kitchen, den = hub.subscribe("kitchen"), hub.subscribe("den")
        await asyncio.to_thread(lambda: [events.emit("kitchen", "training.progress", {"step": n}) for n in range(50)])
        await asyncio.to_thread(events.emit, "den", "speak.finished", {"id": "d1"})
        await asyncio.to_thread(state.replace, "gpu", {"available": False})
        return await take(kitchen.queue, 51), await take(den.queue, 2)

    kitchen, den = run(scenario())
    assert [m["data"]["step"] for m in kitchen[:50]] == list(range(50))
    assert {m["profile"] for m in kitchen[:50]} == {"kitchen"} and kitchen[0]["kind"] == "event"
    assert kitchen[50] == {"kind": "state", "key": "gpu", "data": {"available": False}}  # the household's, for everyone
    assert [m.get("type") or m.get("key") for m in den] == ["speak.finished", "gpu"]


def test_a_stream_that_falls_behind_is_ended_not_grown(monkeypatch: Any) -> None:
    monkeypatch.setattr(stream, "BACKLOG", 5)
    events, state = EventBus(), StateBoard()
    hub = EventHub(events, state)

    async def scenario() -> tuple[list[str | None], int]:
        hub.attach(asyncio.get_running_loop())
        slow, quick = hub.subscribe("default"), hub.subscribe("default")
        for n in range(3):
            await asyncio.to_thread(events.emit, "default", "sample.captured", {"n": n})
            await quick.queue.get()
        for n in range(3, 12):
            await asyncio.to_thread(events.emit, "default", "sample.captured", {"n": n})
            await quick.queue.get()
        return [slow.queue.get_nowait() for _ in range(slow.queue.qsize())], len(hub._subscribers)

    left, subscribers = run(scenario())
    assert left == [None] and subscribers == 1  # ended and forgotten; the quick one goes on


def test_shutting_down_ends_every_stream_and_late_events_are_dropped() -> None:
    events, state = EventBus(), StateBoard()
    state.update("default", provider="piper")
    hub = EventHub(events, state)

    async def scenario() -> list[str | None]:
        hub.attach(asyncio.get_running_loop())
        one = hub.subscribe("default")
        assert [json.loads(m)["data"] for m in hub.snapshot("default")] == [{"provider": "piper"}, {}]
        hub.close_all()
        return [await one.queue.get()]

    assert run(scenario()) == [None]
    events.emit("default", "speak.started", {})  # its loop is closed now: nothing to hand it to, no error
    state.update("default", provider="kokoro")
