"""Reading one Wyoming event within bounds: the lengths a header may announce, the header line's
length, and every malformed header answered with its code instead of a traceback."""

from __future__ import annotations

import asyncio
import json

import pytest
from wyoming.event import Event

from agent.wyoming.wire import MAX_BODY_BYTES, MAX_HEADER_BYTES, FramingError, read_event
from tests.hostile import nested


def read(raw: bytes, eof: bool = True, first: int = 0) -> Event | None:
    """``read_event`` over ``raw`` in memory (a server's reader: asyncio's default limit); with
    ``first``, that many bytes are read before, as the connection reads an event's first byte."""

    async def main() -> Event | None:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        if eof:
            reader.feed_eof()
        return await read_event(reader, await reader.readexactly(first) if first else b"")

    return asyncio.run(main())


def refused(raw: bytes, eof: bool = True, first: int = 0) -> FramingError:
    with pytest.raises(FramingError) as caught:
        read(raw, eof, first)
    return caught.value


def header(document: dict[str, object]) -> bytes:
    return json.dumps(document).encode() + b"\n"


def padded(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    skeleton = b'{"text": "hi", "pad": ""}'
    return skeleton[:-2] + b" " * (size - len(skeleton)) + skeleton[-2:]


def test_data_is_merged_and_the_payload_kept() -> None:
    data = b'{"text": "hello"}'
    event = read(header({"type": "synthesize", "data": {"voice": {"name": "v"}}, "data_length": len(data),
                         "payload_length": 3}) + data + b"abc")
    assert event == Event("synthesize", {"voice": {"name": "v"}, "text": "hello"}, b"abc")


def test_the_end_of_the_stream_is_none_before_or_inside_an_event() -> None:
    assert read(b"") is None
    assert read(b'{"type": "pi') is None
    assert read(header({"type": "ping", "data_length": 10}) + b'{"te') is None
    assert read(header({"type": "ping", "payload_length": 10}) + b"abc") is None


@pytest.mark.parametrize("field", ["data_length", "payload_length"])
def test_a_length_at_the_cap_is_read_one_over_is_refused_unread(field: str) -> None:
    body = padded(MAX_BODY_BYTES)
    event = read(header({"type": "ping", field: MAX_BODY_BYTES}) + body)
    assert event is not None and (event.payload == body or event.data["text"] == "hi")

    async def one_over() -> tuple[FramingError, int]:
        reader = asyncio.StreamReader()
        reader.feed_data(header({"type": "ping", field: MAX_BODY_BYTES + 1}) + padded(MAX_BODY_BYTES + 1))
        reader.feed_eof()
        with pytest.raises(FramingError) as caught:
            await read_event(reader)
        return caught.value, len(await reader.read())

    error, left = asyncio.run(one_over())
    assert error.code == "payload_too_large" and str(MAX_BODY_BYTES) in str(error)
    assert left == MAX_BODY_BYTES + 1, "refused from the header, before reading what it announced"


@pytest.mark.parametrize("field", ["data_length", "payload_length"])
def test_a_terabyte_announced_is_refused_without_waiting_for_it(field: str) -> None:
    assert refused(header({"type": "ping", field: 10**12}), eof=False).code == "payload_too_large"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"[1, 2]\n", "invalid_payload"),
        (b'"ping"\n', "invalid_payload"),
        (b'{"type": "ping", \n', "invalid_json"),
        (b"\n", "invalid_json"),
        (b"   \n", "invalid_json"),
        (b"\xff\xfe\n", "invalid_json"),
        (nested(30000).encode() + b"\n", "invalid_json"),
        (b'{"type": "ping", "data_length": ' + b"9" * 5000 + b"}\n", "invalid_json"),
        (header({"type": "ping", "data_length": 5}) + b"nope!", "invalid_json"),
        (header({"type": "ping", "data_length": 3}) + b"[1]", "invalid_payload"),
        (header({"type": "ping", "data_length": 2}) + b"  ", "invalid_json"),
        (header({"type": "ping", "data_length": "2"}) + b"{}", "invalid_payload"),
        (header({"type": "ping", "data_length": -5}), "invalid_payload"),
        (header({"type": "ping", "payload_length": -1}), "invalid_payload"),
        (header({"type": "ping", "payload_length": 1.5}) + b"xx", "invalid_payload"),
        (header({"type": "ping", "payload_length": True}) + b"x", "invalid_payload"),
        (header({"type": "ping", "data_length": None, "payload_length": [1]}), "invalid_payload"),
        (header({"data": {}}), "invalid_payload"),
        (header({"type": ""}), "invalid_payload"),
        (header({"type": 5}), "invalid_payload"),
        (header({"type": "ping", "data": [1]}), "invalid_payload"),
    ],
)
def test_a_malformed_event_is_refused_with_its_code(raw: bytes, code: str) -> None:
    assert refused(raw).code == code


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\n", "the event header is empty"),
        (b"[1, 2]\n", "event header must be a JSON object"),
        (header({"type": ""}), "event header: type must be a non-empty string"),
        (header({"type": "ping", "data": [1]}), "event header: data must be a JSON object"),
        (header({"type": "ping", "data_length": 3}) + b"[1]", "event data must be a JSON object"),
        (header({"type": "ping", "payload_length": -1}),
         "event header: payload_length must be a whole number of bytes, not -1"),
    ],
)
def test_a_malformed_event_is_told_what_is_wrong(raw: bytes, message: str) -> None:
    """The message goes back to the client in its ``error`` event."""
    assert str(refused(raw)) == message


def test_an_empty_header_line_already_read_is_refused_without_reading_on() -> None:
    error = refused(b"\n" + header({"type": "ping"}), first=1)
    assert (error.code, str(error)) == ("invalid_json", "the event header is empty")


def test_deep_data_is_refused() -> None:
    deep = nested(60000).encode()
    assert refused(header({"type": "ping", "data_length": len(deep)}) + deep).code == "invalid_json"


def test_zero_and_null_lengths_read_nothing() -> None:
    event = read(header({"type": "ping", "data": {"text": "x"}, "data_length": 0, "payload_length": None}) + b"next")
    assert event == Event("ping", {"text": "x"}, None)
    assert read(header({"type": "ping", "data": None})) == Event("ping", {}, None)


def line_of(size: int) -> bytes:
    """A header line of exactly ``size`` bytes before its newline."""
    line = b'{"type": "ping", "data": {"text": "x"}}'
    return line[:-1] + b" " * (size - len(line)) + b"}\n"


@pytest.mark.parametrize("first", [0, 1])
def test_a_header_line_at_its_bound_is_read_one_byte_more_is_refused(first: int) -> None:
    assert read(line_of(MAX_HEADER_BYTES), first=first) == Event("ping", {"text": "x"})
    error = refused(line_of(MAX_HEADER_BYTES + 1), first=first)
    assert error.code == "payload_too_large" and "header line" in str(error)


@pytest.mark.parametrize("first", [0, 1])
def test_a_header_line_without_end_is_refused_at_its_bound(first: int) -> None:
    assert refused(b"{" + b" " * (4 * 1024 * 1024), eof=False, first=first).code == "payload_too_large"
