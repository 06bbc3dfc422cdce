"""Every WebSocket answer that ends a request carries ``"done": true`` (agent/http/api.py): a
client waits for it, so an error frame without it would leave the client waiting for ever. The
refusals of a binary frame, a bad message, an unknown profile, a refused and a crashed request."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Future
from typing import Any

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from agent.commands import Command
from agent.errors import ServiceError
from agent.http.api import Api
from agent.settings import AgentSettings
from tests.agent.http.fake_core import Anything, fake_core


def refused(profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
    raise ServiceError("busy", "the speak queue is full")


def crashed(profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
    failed: Future[dict[str, Any]] = Future()
    failed.set_exception(RuntimeError("engine fell over"))
    return failed


def frames(*messages: str | bytes, speak: Any = None) -> list[dict[str, Any]]:
    """The text frames answered to ``messages``, one answer awaited after each."""
    core = fake_core()
    if speak is not None:
        core.commands["speak"] = Command(Anything, speak)  # type: ignore[arg-type]

    async def go() -> list[dict[str, Any]]:
        async with TestClient(TestServer(Api(core, AgentSettings()).app())) as client:
            ws = await client.ws_connect("/api/tts-stream")
            answers = []
            for message in messages:
                await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
                while True:
                    frame = await ws.receive(timeout=10)
                    if frame.type == WSMsgType.TEXT:
                        answers.append(json.loads(frame.data))
                        break
            await ws.close()
            return answers

    return asyncio.run(go())


def test_a_binary_frame_is_refused_with_done_and_the_stream_goes_on() -> None:
    first, second = frames(b"\x00\x01", json.dumps({"text": "Hi."}))
    assert first == {"done": True, "code": "invalid_payload", "error": "send a JSON text frame"}
    assert second["done"] is True and second["id"] == "r1"


def test_a_message_that_is_not_a_json_object_is_refused_with_done() -> None:
    for text, code in (("not json", "invalid_json"), ("[1]", "invalid_payload")):
        (answer,) = frames(text)
        assert answer["done"] is True and answer["code"] == code and set(answer) == {"done", "code", "error"}


def test_a_refused_request_ends_with_done_its_id_and_its_code() -> None:
    (answer,) = frames(json.dumps({"text": "Hi.", "id": "q7"}), speak=refused)
    assert answer == {"done": True, "id": "q7", "code": "busy", "error": "the speak queue is full"}
    (unknown,) = frames(json.dumps({"text": "Hi.", "profile": "nobody"}))
    assert unknown["done"] is True and unknown["code"] == "unknown_profile" and unknown["id"] is None


def test_a_crashed_request_ends_with_done_and_internal_error() -> None:
    (answer,) = frames(json.dumps({"text": "Hi.", "id": "q8"}), speak=crashed)
    assert answer == {"done": True, "id": "q8", "code": "internal_error", "error": "engine fell over"}
