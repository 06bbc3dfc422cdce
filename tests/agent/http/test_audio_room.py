"""A recording's body is let in before it is read, or refused: the profile, the command's access
and its room in the record budget (the fake core's ``budget``, RECORD_BUDGET bytes) are checked
from the head alone, so a refused upload is answered without its body (it was read whole first,
40 x 30 MiB at once cost 1.2 GB). What was held is given back on every path: the answer, a body
that fails to come, a client that leaves, a body that does not validate, a service that refuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from agent.commands import Command, Reservation
from agent.errors import ServiceError
from agent.http import bodies
from agent.http.api import Api
from agent.settings import AgentSettings
from agent.work import Hold
from tests.agent.http.fake_core import RECORD_BUDGET, Recording, fake_core
from tests.agent.http.test_bodies import chunk, post

AUDIO_LIMIT = 4 * RECORD_BUDGET
RECORD = "/api/profiles/default/commands/record"

Talk = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Any]]


def with_door(core: Any, talk: Talk) -> Any:
    """Run ``talk`` over a raw connection to the door of ``core``."""
    async def go() -> Any:
        server = TestServer(Api(core, AgentSettings(max_audio_bytes=AUDIO_LIMIT)).app())
        await server.start_server(shutdown_timeout=1)
        try:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            try:
                return await talk(reader, writer)
            finally:
                writer.close()
        finally:
            await server.close()
    return asyncio.run(go())


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length")))
    return int(head.split()[1]), json.loads(await asyncio.wait_for(reader.readexactly(length), 10))


def send(core: Any, *messages: bytes) -> tuple[int, dict[str, Any]]:
    """The door's status and JSON answer to ``messages`` (a head alone, if no body is to come)."""
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, dict[str, Any]]:
        for message in messages:
            writer.write(message)
        await writer.drain()
        return await answer(reader)
    return with_door(core, talk)  # type: ignore[no-any-return]


def head(path: str = RECORD, length: int | None = None, content_type: str = "audio/wav") -> bytes:
    sized = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{sized}\r\n\r\n".encode()


def filled(core: Any, free: int) -> Any:
    """``core`` with all but ``free`` bytes of its record budget held by other work."""
    assert core.budget.take(RECORD_BUDGET - free)
    return core


# -- refused from the head alone ------------------------------------------------------------------
def test_a_recording_that_does_not_fit_is_busy_before_its_body_is_sent() -> None:
    core = filled(fake_core(), 100)
    status, refused = send(core, head(length=101))  # and no body ever comes
    assert (status, refused["code"]) == (429, "busy")
    assert core.budget.held == RECORD_BUDGET - 100  # the refusal held nothing


def test_a_recording_that_fits_exactly_is_let_in() -> None:
    core = filled(fake_core(), 100)
    assert send(core, post(RECORD, b"\0" * 100, "audio/wav")) == (200, {"data": {"audio": 100, "b64": 0}})
    assert core.budget.held == RECORD_BUDGET - 100


def test_alone_a_recording_larger_than_the_budget_is_let_in() -> None:
    core = fake_core()
    assert send(core, post(RECORD, b"\0" * (RECORD_BUDGET + 1), "audio/wav"))[0] == 200
    assert core.budget.held == 0


def test_a_length_over_the_route_limit_is_too_large_not_busy() -> None:
    core = filled(fake_core(), 0)
    assert send(core, head(length=AUDIO_LIMIT + 1))[1]["code"] == "payload_too_large"


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/api/profiles/nobody/commands/record", 404, "unknown_profile"),
    ("/api/profiles/no..pe/commands/record", 400, "invalid_profile"),
    ("/api/profiles/default/commands/speaker.enroll", 403, "forbidden"),
], ids=["unknown-profile", "invalid-profile", "forbidden"])
def test_the_profile_and_access_are_checked_before_the_body(path: str, status: int, code: str) -> None:
    core = fake_core()
    refused = send(core, head(path, length=RECORD_BUDGET))  # and no body ever comes
    assert (refused[0], refused[1]["code"]) == (status, code)
    assert core.budget.held == 0


# -- a body without a length ----------------------------------------------------------------------
def test_a_chunked_recording_grows_its_room_as_it_arrives() -> None:
    core = filled(fake_core(), 100)
    status, _ = send(core, head(), chunk(b"\0" * 60), chunk(b"\0" * 40), b"0\r\n\r\n")  # exactly the room left
    assert status == 200 and core.budget.held == RECORD_BUDGET - 100
    status, refused = send(core, head(), chunk(b"\0" * 60), chunk(b"\0" * 41))  # one byte more, and no end
    assert (status, refused["code"]) == (429, "busy")
    assert core.budget.held == RECORD_BUDGET - 100


def test_alone_a_chunked_recording_grows_past_the_budget() -> None:
    core = fake_core()
    body = [chunk(b"\0" * RECORD_BUDGET), chunk(b"\0"), b"0\r\n\r\n"]
    assert send(core, head(), *body) == (200, {"data": {"audio": RECORD_BUDGET + 1, "b64": 0}})
    assert core.budget.held == 0


# -- what was held comes back ---------------------------------------------------------------------
def test_the_bytes_come_back_when_the_body_does_not_come_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "BODY_SECONDS", 0.2)
    core = fake_core()
    assert send(core, head(length=100), b"\0" * 10)[1]["code"] == "request_timeout"
    assert core.budget.held == 0


def test_the_bytes_come_back_when_the_client_leaves() -> None:
    core = fake_core()
    seen: list[int] = []

    async def leave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(length=1000) + b"\0" * 10)
        await writer.drain()
        for _ in range(1000):  # let in: its bytes are held while the rest is awaited
            if core.budget.held:
                break
            await asyncio.sleep(0.01)
        seen.append(core.budget.held)
        writer.transport.abort()
        for _ in range(1000):
            if not core.budget.held:
                return
            await asyncio.sleep(0.01)

    with_door(core, leave)
    assert seen == [1000]
    assert core.budget.held == 0


@pytest.mark.parametrize("body", [b'{"audio_b64": 5}', b'{"audio_b64": ', b"[]"], ids=["invalid", "not-json", "not-object"])
def test_the_bytes_come_back_when_the_body_does_not_validate(body: bytes) -> None:
    core = fake_core()
    status, refused = send(core, post(RECORD, body))
    assert status == 400 and refused["code"] in ("invalid_payload", "invalid_json")
    assert core.budget.held == 0


def test_the_bytes_come_back_when_the_service_refuses() -> None:
    core = fake_core()
    reserve = core.commands["record"].reserve

    def refusing(profile: str, size: int) -> Reservation:
        room = reserve(profile, size)

        def run(p: str, request: Any, out: Any) -> Any:
            raise ServiceError("record_disabled", "recording is disabled")
        return Reservation(room.hold, run)

    core.commands["record"] = Command(Recording, core.commands["record"].run, reserve=refusing)
    assert send(core, post(RECORD, b"\0" * 100, "audio/wav"))[1]["code"] == "record_disabled"
    assert core.budget.held == 0


def test_the_job_takes_the_bytes_over_the_door_does_not_give_them_back() -> None:
    """While the job holds them, the door's release gives back nothing (it would count them twice)."""
    core = fake_core()
    reserve = core.commands["record"].reserve
    jobs: list[Hold] = []

    def taking(profile: str, size: int) -> Reservation:
        room = reserve(profile, size)

        def run(p: str, request: Any, out: Any) -> Any:
            job = room.hold.pass_on()
            assert job is not None
            jobs.append(job)  # still waiting to be scored when the door answers
            return {"taken": size}
        return Reservation(room.hold, run)

    core.commands["record"] = Command(Recording, core.commands["record"].run, reserve=taking)
    assert send(core, post(RECORD, b"\0" * 100, "audio/wav")) == (200, {"data": {"taken": 100}})
    assert core.budget.held == 100
    jobs[0].release()
    assert core.budget.held == 0
