"""``GET /api/events`` in-process (agent/http/stream.py ``serve``): server-sent events headers,
the profile's and the household's state first, then its events as ``data:`` lines, a ping
comment when nothing happens, and the subscriber gone once the client is."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.http import stream
from agent.http.api import Api
from agent.settings import AgentSettings
from tests.agent.http.fake_core import fake_core


def test_a_stream_starts_with_the_state_then_its_events_and_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "PING_SECONDS", 0.05)
    core = fake_core()
    core.state.replace("default", {"provider": "piper"})
    core.state.replace("gpu", {"available": False})

    async def go() -> tuple[dict[str, str], list[bytes]]:
        async with TestClient(TestServer(Api(core, AgentSettings()).app())) as client:
            response = await client.get("/api/events", params={"profile": "default"})
            lines = [await response.content.readline() for _ in range(4)]  # two documents
            emitter = threading.Thread(target=core.events.emit, args=("default", "speak.finished", {"id": "r9"}))
            emitter.start()
            emitter.join()
            while True:
                line = await asyncio.wait_for(response.content.readline(), 10)
                lines.append(line)
                if line.startswith(b"data: ") and b"speak.finished" in line:
                    break
            while (line := await asyncio.wait_for(response.content.readline(), 10)) != b": ping\n":
                assert line, "the stream ended"
            lines.append(line)
            core.events.emit("default", "speak.started", {"id": "r10"})  # a ping does not end the stream
            while b"speak.started" not in (line := await asyncio.wait_for(response.content.readline(), 10)):
                assert line, "the stream ended after a ping"
            headers = dict(response.headers)
            response.close()
            return headers, lines

    headers, lines = asyncio.run(go())
    assert headers["Content-Type"] == "text/event-stream"
    assert (headers["Cache-Control"], headers["X-Accel-Buffering"]) == ("no-cache", "no")
    assert lines[1] == lines[3] == b"\n"
    assert json.loads(lines[0].removeprefix(b"data: ")) == {"kind": "state", "key": "default", "data": {"provider": "piper"}}
    assert json.loads(lines[2].removeprefix(b"data: ")) == {"kind": "state", "key": "gpu", "data": {"available": False}}
    event: dict[str, Any] = next(json.loads(l.removeprefix(b"data: ")) for l in lines if b"speak.finished" in l)
    assert (event["kind"], event["profile"], event["type"], event["data"]) == ("event", "default", "speak.finished", {"id": "r9"})
    assert isinstance(event["time"], float)
    assert lines[-1] == b": ping\n"


def test_an_unknown_profile_has_no_stream() -> None:
    async def go() -> tuple[int, dict[str, Any]]:
        async with TestClient(TestServer(Api(fake_core(), AgentSettings()).app())) as client:
            response = await client.get("/api/events", params={"profile": "nobody"})
            return response.status, await response.json()

    status, body = asyncio.run(go())
    assert status == 404 and body["code"] == "unknown_profile"


def test_what_json_cannot_write_is_written_as_text() -> None:
    assert json.loads(stream.event_message("p", "x", {"path": Path("/a")}, 1.5))["data"] == {"path": "/a"}
    assert json.loads(stream.state_message("p", {"path": Path("/b")}))["data"] == {"path": "/b"}
