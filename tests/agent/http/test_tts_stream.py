"""A client that leaves while its speech is still being made: over the WebSocket it is one INFO
line (it was an ERROR with a traceback) and the door goes on serving; over the WebSocket and
``POST /api/tts`` alike its request stops (``client_gone``) instead of running to its last sentence."""

from __future__ import annotations

import asyncio
import json
import logging

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from websockets.asyncio.client import connect

from agent.errors import ServiceError

from tests.agent.http.fake_core import Speech, api_app, fake_core
from tests.mosquitto import free_port


@asynccontextmanager
async def serving(core: object = None) -> AsyncIterator[str]:
    """The door as the agent runs it (aiohttp's test server cancels a handler whose client left:
    the agent's does not, so the handler meets the closed connection itself)."""
    runner = web.AppRunner(api_app(core), handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"ws://127.0.0.1:{port}/api/tts-stream"
    finally:
        await runner.cleanup()


def test_a_client_that_leaves_mid_stream_is_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> dict[str, object]:
        async with serving() as url:
            async with connect(url) as ws:
                await ws.send(json.dumps({"text": "Many sentences.", "sentences": 200, "pause": 0.01}))
                assert isinstance(await ws.recv(), bytes)
                ws.transport.abort()  # gone, without a close frame
            while not any("left mid-stream" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
            async with connect(url) as ws:  # the door still serves
                await ws.send(json.dumps({"text": "Two.", "sentences": 2}))
                frames = [await ws.recv() for _ in range(3)]
            assert [type(f) for f in frames] == [bytes, bytes, str]
            return dict(json.loads(frames[-1]))

    with caplog.at_level(logging.INFO, "agent.http"):
        done = asyncio.run(asyncio.wait_for(go(), 10))
    assert done["done"] is True and done["chunks"] == 2
    left = [r for r in caplog.records if "left mid-stream" in r.getMessage()]
    assert len(left) == 1 and left[0].levelno == logging.INFO and left[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def stopped(core: object) -> Speech:
    """The request's speech, once it has stopped or finished."""
    speeches: list[Speech] = core.speeches  # type: ignore[attr-defined]
    while not speeches or not speeches[0].answer.done():
        await asyncio.sleep(0.01)
    return speeches[0]


def test_a_websocket_client_that_leaves_stops_its_speech_before_the_last_sentence() -> None:
    core = fake_core()

    async def go() -> Speech:
        async with serving(core) as url:
            async with connect(url) as ws:
                await ws.send(json.dumps({"text": "Many sentences.", "sentences": 200, "pause": 0.01}))
                assert isinstance(await ws.recv(), bytes)
                ws.transport.abort()  # gone, without a close frame
            return await stopped(core)

    speech = asyncio.run(asyncio.wait_for(go(), 10))
    error = speech.answer.exception()
    assert isinstance(error, ServiceError) and error.code == "client_gone", error
    assert speech.sent < 200


def test_an_http_client_that_leaves_stops_its_speech_before_the_last_sentence(caplog: pytest.LogCaptureFixture) -> None:
    core = fake_core()

    async def go() -> Speech:
        async with serving(core) as url:
            port = int(url.split(":")[2].split("/")[0])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = json.dumps({"text": "Many sentences.", "sentences": 200, "pause": 0.01}).encode()
            writer.write(b"POST /api/tts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            while not core.speeches or not core.speeches[0].sent:  # its first sentence is made
                await asyncio.sleep(0.01)
            writer.close()  # gone before its answer
            return await stopped(core)

    with caplog.at_level(logging.INFO, "agent.http"):
        speech = asyncio.run(asyncio.wait_for(go(), 10))
    error = speech.answer.exception()
    assert isinstance(error, ServiceError) and error.code == "client_gone", error
    assert speech.sent < 200


def test_a_websocket_client_that_says_goodbye_mid_stream_stops_its_speech(caplog: pytest.LogCaptureFixture) -> None:
    core = fake_core()

    async def go() -> Speech:
        async with serving(core) as url:
            async with connect(url, close_timeout=30) as ws:
                await ws.send(json.dumps({"text": "Many sentences.", "sentences": 200, "pause": 0.01}))
                assert isinstance(await ws.recv(), bytes)
                await ws.close()  # a close frame, while 199 sentences are to come: the door answers it
                assert ws.close_code == 1000
            return await stopped(core)

    with caplog.at_level(logging.INFO, "agent.http"):
        speech = asyncio.run(asyncio.wait_for(go(), 10))
    error = speech.answer.exception()
    assert isinstance(error, ServiceError) and error.code == "client_gone", error
    assert speech.sent < 200
    assert [r.getMessage() for r in caplog.records if "left mid-stream" in r.getMessage()] == [
        "WebSocket client left mid-stream (127.0.0.1)"
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_request_sent_while_another_is_spoken_is_answered_after_it() -> None:
    async def go() -> list[object]:
        async with serving() as url:
            async with connect(url) as ws:
                await ws.send(json.dumps({"text": "Two.", "sentences": 2, "pause": 0.05}))
                await ws.send(json.dumps({"text": "Three.", "sentences": 3}))  # read while the first is spoken
                return [await ws.recv() for _ in range(7)]

    frames = asyncio.run(asyncio.wait_for(go(), 10))
    assert [type(f) for f in frames] == [bytes, bytes, str, bytes, bytes, bytes, str]
    assert [json.loads(f)["chunks"] for f in frames if isinstance(f, str)] == [2, 3]
