"""A WebSocket client that leaves while its sentences are still coming is one INFO line (it was
an ERROR with a traceback), and the door goes on serving."""

from __future__ import annotations

import asyncio
import json
import logging

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from websockets.asyncio.client import connect

from tests.agent.http.fake_core import api_app
from tests.mosquitto import free_port


@asynccontextmanager
async def serving() -> AsyncIterator[str]:
    """The door as the agent runs it (aiohttp's test server cancels a handler whose client left:
    the agent's does not, so the handler meets the closed connection itself)."""
    runner = web.AppRunner(api_app(), handle_signals=False, access_log=None)
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
