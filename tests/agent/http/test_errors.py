"""The door's words for the services' codes: a client that left is its own choice (499, an INFO
line), a refusal of bad input is a WARNING line with its HTTP status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.commands import Command
from agent.errors import ServiceError
from agent.http.api import Api
from agent.http.errors import status_of
from agent.settings import AgentSettings
from tests.agent.http.fake_core import Anything, fake_core


def refusing(code: str) -> Any:
    def run(profile: str, request: Any, out: Any) -> Any:
        raise ServiceError(code, f"refused with {code}")
    return run


def post_tts(code: str) -> tuple[int, dict[str, Any]]:
    core = fake_core()
    core.commands["speak"] = Command(Anything, refusing(code))

    async def go() -> tuple[int, dict[str, Any]]:
        async with TestClient(TestServer(Api(core, AgentSettings()).app())) as client:
            response = await client.post("/api/tts", json={"text": "Hello."})
            return response.status, await response.json()
    return asyncio.run(go())


@pytest.mark.parametrize(("code", "status", "level"), [
    ("client_gone", 499, logging.INFO), ("audio_too_long", 400, logging.WARNING), ("busy", 429, logging.WARNING),
])
def test_each_code_has_its_status_and_its_log_level(caplog: pytest.LogCaptureFixture, code: str, status: int,
                                                    level: int) -> None:
    with caplog.at_level(logging.DEBUG, "agent.http"):
        answer = post_tts(code)
    assert answer == (status, {"error": f"refused with {code}", "code": code})
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "refused" in r.getMessage()]
    assert lines == [(level, f"HTTP POST /api/tts refused: {code}: refused with {code}")]


def test_an_unknown_code_is_a_server_error() -> None:
    assert status_of("no_such_code") == 500
