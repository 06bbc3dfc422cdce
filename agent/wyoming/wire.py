"""One Wyoming event off the wire, within bounds.

An event is a JSON header line (``type``, optional ``data``, ``data_length``, ``payload_length``),
then ``data_length`` bytes of JSON merged into ``data``, then ``payload_length`` bytes of payload.
The ``wyoming`` library's reader reads whatever length the header announces (``readexactly``:
10^12 announced and 600 MB sent grew the agent by 614 MB) and lets a header that is a list, a
string length or 30 000 nested brackets end in a traceback. A TTS server receives small events
(a ``synthesize`` of 5000 characters is at most about 60 KB of JSON), so here:

- the header line is at most ``MAX_HEADER_BYTES`` (asyncio's stream limit, where the reader's
  buffer stops growing anyway), its newline not counted;
- ``data_length`` and ``payload_length`` are whole numbers from 0 to ``MAX_BODY_BYTES`` each;
- the header and the data are JSON objects as ``agent.requests.json_object`` reads them (depth
  and digits bounded, as for every door).

Anything else is a ``FramingError``: what follows it cannot be found, so the connection answers
with an ``error`` event and closes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wyoming.event import Event

from agent.errors import ServiceError
from agent.requests import json_object

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024


class FramingError(ServiceError):
    """An event that cannot be read; the connection ends after answering it."""


async def read_event(reader: asyncio.StreamReader, first: bytes = b"") -> Event | None:
    """The next event, its header line starting with ``first`` (a byte already read); None when
    the client closed the connection, before or in the middle of the event."""
    try:
        header = _parse(await _header_line(reader, first), "event header")
        kind = header.get("type")
        if not isinstance(kind, str) or not kind:
            raise FramingError("invalid_payload", "event header: type must be a non-empty string")
        data = header.get("data")
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise FramingError("invalid_payload", "event header: data must be a JSON object")
        data_length, payload_length = _length(header, "data_length"), _length(header, "payload_length")
        if data_length:
            data = {**data, **_parse(await reader.readexactly(data_length), "event data")}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    return Event(type=kind, data=data, payload=payload)


async def _header_line(reader: asyncio.StreamReader, first: bytes) -> bytes:
    if first == b"\n":
        return first
    try:
        rest: bytes | None = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        rest = None
    if rest is None or len(first) + len(rest) - 1 > MAX_HEADER_BYTES:
        raise FramingError("payload_too_large", f"header line longer than {MAX_HEADER_BYTES} bytes")
    return first + rest


def _parse(raw: bytes, what: str) -> dict[str, Any]:
    if not raw.strip():  # json_object takes nothing as {}: a header must say something
        raise FramingError("invalid_json", f"the {what} is empty")
    try:
        return json_object(raw, what)
    except ServiceError as exc:
        raise FramingError(exc.code, str(exc)) from None


def _length(header: dict[str, Any], field: str) -> int:
    value = header.get(field)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FramingError("invalid_payload", f"event header: {field} must be a whole number of bytes, not {value!r:.40}")
    if value > MAX_BODY_BYTES:
        raise FramingError("payload_too_large", f"event header: {field} {value} is over the limit of {MAX_BODY_BYTES} bytes")
    return value
