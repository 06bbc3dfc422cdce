"""``/api/health`` answers while a profile's samples store is still opening (an integrity check
of a large database): it asks the record service's problems, which no longer wait behind the
open, so the HTTP loop is not blocked (it was before)."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from agent.http.api import Api
from agent.record.service import RecordService
from agent.settings import AgentSettings
from tests.agent.http.fake_core import fake_core
from tests.agent.record.test_opening import SlowOpen, answers, opening, slow  # noqa: F401  (slow: the fixture)


def test_health_answers_while_a_store_is_opening(slow: tuple[RecordService, SlowOpen]) -> None:  # noqa: F811
    service, opener = slow
    kitchen = opening(service, opener)
    core = fake_core()
    core.problems = service.problems

    async def health() -> tuple[int, object]:
        async with TestClient(TestServer(Api(core, AgentSettings()).app())) as client:
            answer = await client.get("/api/health")
            return answer.status, (await answer.json())["status"]

    assert answers(lambda: asyncio.run(health())) == (200, "online")  # on a loop of its own, as the door's
    assert not kitchen.done()
    opener.gate.set()
    kitchen.result(10)


def test_health_says_the_agents_memory() -> None:
    core = fake_core()

    async def health() -> dict[str, object]:
        async with TestClient(TestServer(Api(core, AgentSettings()).app())) as client:
            return await (await client.get("/api/health")).json()  # type: ignore[no-any-return]

    assert asyncio.run(health())["memory"] == core.memory()
