"""The streamed ``POST /api/tts`` (agent/http/streamed_tts.py) in-process: ``serve`` behind a bare
route of aiohttp's test server, fed the way the speak worker feeds it (``begin``, then pieces,
then the answer): the headers name who speaks, the body is every piece in order, a failure
before any audio is raised, one after it cuts the body short, never a last chunk."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from agent.errors import ServiceError
from agent.http.streamed_tts import EncodedStream, headers_of, serve
from agent.speak.departure import Departure

Script = Callable[[EncodedStream, "asyncio.Future[dict[str, Any]]"], Awaitable[None]]


def run(script: Script) -> tuple[int, bytes | str, CIMultiDict[str]]:
    """The route's answer: its status, body (or the client's error) and headers."""

    async def route(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        out = EncodedStream(loop, Departure("the HTTP client", "test"))
        answer: asyncio.Future[dict[str, Any]] = loop.create_future()
        asyncio.get_running_loop().create_task(script(out, answer))
        try:
            return await serve(request, answer, out, "audio/x-test")
        except ServiceError as exc:
            return web.json_response({"code": exc.code}, status=418)
        except RuntimeError as exc:
            return web.json_response({"bug": str(exc)}, status=500)

    async def go() -> tuple[int, bytes | str, CIMultiDict[str]]:
        app = web.Application()
        app.router.add_post("/", route)
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/")
            try:
                body: bytes | str = await response.read()
            except aiohttp.ClientPayloadError as exc:
                body = f"cut: {type(exc).__name__}"
            return response.status, body, CIMultiDict(response.headers)
    return asyncio.run(go())


SPEAKER = {"provider": "kokoro", "voice": "af_heart", "cached": True, "fallback": False}


def test_the_pieces_go_out_in_order_under_the_speakers_headers() -> None:
    async def script(out: EncodedStream, answer: asyncio.Future[dict[str, Any]]) -> None:
        out.begin("r7", SPEAKER)
        out.deliver(b"one-")
        await asyncio.sleep(0)
        out.deliver(b"two-")
        out.deliver(b"three")
        answer.set_result({})

    status, body, headers = run(script)
    assert status == 200 and body == b"one-two-three" and headers["Content-Type"] == "audio/x-test"
    assert headers["Transfer-Encoding"] == "chunked"
    assert (headers["X-Request-Id"], headers["X-Provider"], headers["X-Voice"]) == ("r7", "kokoro", "af_heart")
    assert (headers["X-Cached"], headers["X-Fallback"]) == ("true", "false") and "X-Fallback-Reason" not in headers


def test_a_failure_before_any_audio_is_the_requests_error() -> None:
    async def script(out: EncodedStream, answer: asyncio.Future[dict[str, Any]]) -> None:
        answer.set_exception(ServiceError("voice_not_found", "no such voice"))

    status, body, _ = run(script)
    assert status == 418 and body == b'{"code": "voice_not_found"}'


def test_an_answer_without_audio_is_a_bug_said_so() -> None:
    async def script(out: EncodedStream, answer: asyncio.Future[dict[str, Any]]) -> None:
        answer.set_result({})

    status, body, _ = run(script)
    assert status == 500 and body == b'{"bug": "the speak request was answered without audio"}'


def test_a_failure_after_the_first_bytes_cuts_the_body_short(caplog: pytest.LogCaptureFixture) -> None:
    async def script(out: EncodedStream, answer: asyncio.Future[dict[str, Any]]) -> None:
        out.begin("r8", SPEAKER)
        out.deliver(b"first sentence")
        await asyncio.sleep(0.05)
        answer.set_exception(ServiceError("provider_error", "the engine broke"))

    with caplog.at_level(logging.WARNING, "agent.http.streamed_tts"):
        status, body, _ = run(script)
    assert status == 200 and body == "cut: ClientPayloadError"
    assert [r.getMessage() for r in caplog.records] == ["HTTP speech cut short after its first bytes: the engine broke"]


def test_the_headers_say_a_fallback_and_why() -> None:
    assert headers_of({"id": "r1", "provider": "piper", "voice": "v", "cached": False, "fallback": True,
                       "fallback_code": "voice_not_found"}) == {
        "X-Request-Id": "r1", "X-Provider": "piper", "X-Voice": "v", "X-Cached": "false", "X-Fallback": "true",
        "X-Fallback-Reason": "voice_not_found"}
    assert headers_of({}) == {"X-Request-Id": "", "X-Provider": "", "X-Voice": "", "X-Cached": "false",
                              "X-Fallback": "false"}
    assert "X-Fallback-Reason" not in headers_of({"fallback": True, "fallback_code": ""})


def test_a_stream_is_one_continuous_file_from_the_http_door_until_told_who_speaks() -> None:
    async def check() -> None:
        out = EncodedStream(asyncio.get_running_loop(), Departure("c", "w"))
        assert out.continuous is True and out.speaker == {} and out.where("r1", True) == "http"
        out.begin("r3", {"voice": "w"})
        assert out.speaker == {"id": "r3", "voice": "w"}
        other = EncodedStream(asyncio.get_running_loop(), Departure("c", "w"), where="openai")
        assert other.where("r1", True) == "openai"
    asyncio.run(check())


def test_a_sentence_after_the_client_left_is_refused() -> None:
    async def check() -> None:
        departure = Departure("the HTTP client", "10.0.0.5")
        out = EncodedStream(asyncio.get_running_loop(), departure)
        out.chunk("r1", 0, b"one")
        departure.leave()
        with pytest.raises(ServiceError) as gone:
            out.chunk("r1", 1, b"two")
        assert gone.value.code == "client_gone"
        assert await out.queue.get() == b"one" and out.queue.empty()
    asyncio.run(check())
