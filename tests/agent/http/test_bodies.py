"""A body within its route's limit: JSON routes at most max_request_bytes, the audio routes
(record) up to max_audio_bytes; a Content-Length over the limit is refused before a byte of the
body is read, a chunked body is cut as soon as it passes the limit, a body that does not come in
time is refused. Limits here are the smallest settings allow: 256 and 1024 bytes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from agent.errors import ServiceError
from agent.http import bodies
from tests.agent.http.fake_core import api_app

JSON_LIMIT, AUDIO_LIMIT = 256, 1024


def exchange(*messages: bytes) -> tuple[int, dict[str, Any]]:
    """Send raw bytes to the door; its status and JSON body."""
    async def go() -> tuple[int, dict[str, Any]]:
        server = TestServer(api_app(max_request_bytes=JSON_LIMIT, max_audio_bytes=AUDIO_LIMIT))
        await server.start_server(shutdown_timeout=1)  # a handler still reading is a failed test: no need to wait
        try:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            for message in messages:
                writer.write(message)
            await writer.drain()
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
            length = int(next(line.split(":")[1] for line in head.split("\r\n")
                              if line.lower().startswith("content-length")))
            body = await asyncio.wait_for(reader.readexactly(length), 10)
            writer.close()
            return int(head.split()[1]), json.loads(body)
        finally:
            await server.close()
    return asyncio.run(go())


def post(path: str, body: bytes, content_type: str = "application/json", length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {size}\r\n\r\n").encode() + body


def chunked_head(path: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def sized(limit: int, key: str = "text") -> bytes:
    """A JSON object of exactly ``limit`` bytes."""
    shell = json.dumps({key: ""}).encode()
    return json.dumps({key: "a" * (limit - len(shell))}).encode()


TTS, LIST, RECORD = "/api/tts", "/api/profiles/default/commands/samples.list", "/api/profiles/default/commands/record"


def test_a_json_route_takes_its_limit_and_refuses_a_byte_more() -> None:
    assert exchange(post(LIST, sized(JSON_LIMIT)))[0] == 200
    status, answer = exchange(post(LIST, sized(JSON_LIMIT + 1)))
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert exchange(post(TTS, sized(JSON_LIMIT + 1)))[0] == 413


def test_a_length_over_the_limit_is_refused_before_the_body_comes() -> None:
    """Only the head is sent: the answer comes without waiting for a body that never will."""
    assert exchange(post(TTS, b"", length=JSON_LIMIT + 1)) == (413, {
        "code": "payload_too_large", "error": f"the body is {JSON_LIMIT + 1} bytes; the limit is {JSON_LIMIT}"})
    assert exchange(post(RECORD, b"", "audio/wav", length=30 * 1024 * 1024))[0] == 413


def test_a_chunked_body_is_cut_at_the_limit_without_waiting_for_its_end() -> None:
    """The chunks pass the limit by one byte and the body never ends: refused all the same."""
    status, answer = exchange(chunked_head(TTS), chunk(b" " * JSON_LIMIT), chunk(b" "))
    assert (status, answer["code"]) == (413, "payload_too_large")


def test_a_chunked_body_at_the_limit_is_read() -> None:
    body = sized(JSON_LIMIT)
    assert exchange(chunked_head(LIST), chunk(body[:100]), chunk(body[100:]), b"0\r\n\r\n")[0] == 200


def test_only_the_audio_routes_take_audio_sized_bodies() -> None:
    status, answer = exchange(post(RECORD, b"\0" * AUDIO_LIMIT, "audio/wav"))
    assert (status, answer["data"]["audio"]) == (200, AUDIO_LIMIT)
    assert exchange(post(RECORD, b"\0" * (AUDIO_LIMIT + 1), "audio/wav"))[0] == 413
    status, answer = exchange(post(RECORD, sized(AUDIO_LIMIT, "audio_b64")))  # a recording's JSON may be as large
    assert status == 200 and answer["data"]["b64"] > JSON_LIMIT
    assert exchange(post(RECORD, sized(AUDIO_LIMIT + 1, "audio_b64")))[0] == 413


def test_a_body_that_does_not_come_in_time_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies, "BODY_SECONDS", 0.2)
    status, answer = exchange(post(LIST, b'{"a": ', length=100))
    assert (status, answer) == (408, {"code": "request_timeout", "error": "the body did not arrive within 0 s"})


class Arriving:
    """A request whose body comes in these pieces, without a Content-Length (chunked)."""

    content_length = None

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = [*pieces, b""]
        self.content = self

    async def readany(self) -> bytes:
        return self.pieces.pop(0)


def read(*pieces: bytes, limit: int) -> bytes:
    return asyncio.run(bodies.read_body(Arriving(*pieces), limit))  # type: ignore[arg-type]


def test_a_body_in_pieces_is_read_whole_up_to_the_limit() -> None:
    assert read(b"ab", b"cd", limit=4) == b"abcd"
    with pytest.raises(ServiceError) as refused:
        read(b"abc", b"de", b"f", limit=4)
    assert (refused.value.code, str(refused.value)) == ("payload_too_large", "the body is more than 4 bytes, the limit")
