"""``POST /api/tts`` streams: its first bytes (an open-length WAV header and the first sentence)
leave while the rest is still being made; a failure before any audio is the usual JSON error,
one after the first bytes cuts the body short; ``"stream": false`` is one whole WAV."""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.commands import Command
from agent.errors import ServiceError
from agent.speak.encoding import StreamEncoder, wav_header
from tests.agent.http.fake_core import SILENCE, Anything, api_app, fake_core, summary
from tests.mosquitto import free_port

WAIT = 10  # seconds a step may take (never reached when it works)
PCM = SILENCE[44:]


class Gated:
    """``speak``: the first sentence at once, the second only once the test lets it (or fails there)."""

    def __init__(self, fail_after_first: bool = False, fail_at_once: bool = False) -> None:
        self.go_on = threading.Event()
        self.answer: Future[dict[str, Any]] = Future()
        self.fail_after_first = fail_after_first
        self.fail_at_once = fail_at_once

    def __call__(self, profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
        self.format = request.model_extra.get("format")
        encoder = StreamEncoder(self.format or "wav")

        def sentence(seq: int) -> None:  # what the speak service hands a ``continuous`` out: the stream's bytes
            out.chunk("r1", seq, encoder.feed(PCM, 22050) if getattr(out, "continuous", False) else SILENCE)

        def run() -> None:
            if self.fail_at_once:
                self.answer.set_exception(ServiceError("provider_error", "the engine broke"))
                return
            begin = getattr(out, "begin", None)
            if begin is not None:
                begin("r1", {"provider": "piper", "voice": "v", "cached": False, "fallback": True,
                             "fallback_code": "voice_not_found"})
            sentence(0)
            self.go_on.wait(WAIT)
            if self.fail_after_first:
                self.answer.set_exception(ServiceError("provider_error", "the engine broke mid-way"))
                return
            sentence(1)
            self.answer.set_result({**summary(), "chunks": 2})

        if not request.model_extra.get("stream", False):  # the door asks for streaming, or not
            out.whole("r1", SILENCE)
            self.answer.set_result({**summary(), "chunks": 1})
            return self.answer
        threading.Thread(target=run, daemon=True).start()
        return self.answer


@asynccontextmanager
async def serving(speak: Gated) -> AsyncIterator[str]:
    core = fake_core()
    core.commands["speak"] = Command(Anything, speak)  # type: ignore[arg-type]
    runner = web.AppRunner(api_app(core), handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/api/tts"
    finally:
        await runner.cleanup()


def test_the_first_sentence_arrives_before_the_rest_is_made() -> None:
    speak = Gated()

    async def go() -> tuple[bytes, bytes, bool, dict[str, str]]:
        async with serving(speak) as url, aiohttp.ClientSession() as session:
            async with session.post(url, json={"text": "One. Two."}) as response:
                assert response.status == 200
                head = b""
                while len(head) < 44 + len(PCM):
                    head += await response.content.readany()
                early = not speak.answer.done()  # the second sentence is not made yet
                speak.go_on.set()
                return head, await response.content.read(), early, dict(response.headers)

    try:
        head, rest, early, headers = asyncio.run(asyncio.wait_for(go(), WAIT * 2))
    finally:
        speak.go_on.set()
    assert early, "the first bytes came only after the whole text was made"
    assert head == wav_header(22050) + PCM and rest == PCM
    assert struct.unpack("<I", head[4:8])[0] == struct.unpack("<I", head[40:44])[0] == 0xFFFFFFFF
    assert (headers["Content-Type"], headers["X-Provider"], headers["X-Fallback"], headers["X-Fallback-Reason"]) == (
        "audio/wav", "piper", "true", "voice_not_found")
    assert "Content-Length" not in headers


def test_a_failure_before_any_audio_is_the_json_error() -> None:
    async def go() -> tuple[int, dict[str, Any]]:
        async with serving(Gated(fail_at_once=True)) as url, aiohttp.ClientSession() as session:
            async with session.post(url, json={"text": "One."}) as response:
                return response.status, await response.json()

    status, body = asyncio.run(asyncio.wait_for(go(), WAIT))
    assert (status, body["code"]) == (502, "provider_error")


def test_a_failure_after_the_first_bytes_cuts_the_body_short() -> None:
    speak = Gated(fail_after_first=True)
    speak.go_on.set()

    async def go() -> None:
        async with serving(speak) as url, aiohttp.ClientSession() as session:
            async with session.post(url, json={"text": "One. Two."}) as response:
                assert response.status == 200
                await response.read()

    with pytest.raises(aiohttp.ClientPayloadError):  # never a body that looks whole
        asyncio.run(asyncio.wait_for(go(), WAIT))


def test_stream_false_is_one_whole_wav_with_the_summary() -> None:
    async def go() -> tuple[bytes, dict[str, str]]:
        async with serving(Gated()) as url, aiohttp.ClientSession() as session:
            async with session.post(url, json={"text": "One.", "stream": False}) as response:
                return await response.read(), dict(response.headers)

    body, headers = asyncio.run(asyncio.wait_for(go(), WAIT))
    assert body == SILENCE and headers["X-Audio-Seconds"] == "0.1" and headers["Content-Length"] == str(len(SILENCE))


@pytest.mark.parametrize(("fields", "accept", "wanted", "media_type"), [
    ({}, "audio/mpeg", "mp3", "audio/mpeg"),
    ({}, "audio/aac;q=0.9, audio/ogg;q=0.8", "opus", "audio/ogg"),
    ({"format": "flac"}, "audio/mpeg", "flac", "audio/flac"),  # the body's field wins over the header
    ({}, None, "wav", "audio/wav"),
])
def test_the_format_is_the_body_s_or_the_accept_header_s(fields: dict[str, Any], accept: str | None, wanted: str,
                                                         media_type: str) -> None:
    speak = Gated()
    speak.go_on.set()

    async def go() -> tuple[int, str]:
        headers = {"Accept": accept} if accept else {}
        async with serving(speak) as url, aiohttp.ClientSession() as session:
            async with session.post(url, json={"text": "One.", **fields}, headers=headers) as response:
                await response.read()
                return response.status, response.headers["Content-Type"]

    assert asyncio.run(asyncio.wait_for(go(), WAIT)) == (200, media_type)
    assert speak.format == wanted


def test_an_accept_header_of_audio_the_agent_cannot_write_is_refused() -> None:
    async def go() -> tuple[int, dict[str, Any]]:
        async with serving(Gated()) as url, aiohttp.ClientSession() as session:
            async with session.post(url, json={"text": "One."}, headers={"Accept": "audio/aac"}) as response:
                return response.status, await response.json()

    status, body = asyncio.run(asyncio.wait_for(go(), WAIT))
    assert (status, body["code"], body["data"]["supported"][:2]) == (400, "unsupported_format", ["wav", "pcm"])
