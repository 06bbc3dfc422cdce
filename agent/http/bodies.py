"""A request's body, read within the route's own limit: a JSON route holds at most
``max_request_bytes`` of it, only the audio routes up to ``max_audio_bytes``. A body that says it
is larger (Content-Length) is refused before a byte of it is read; one without a length (chunked)
is cut as soon as it passes the limit; one that takes longer than ``BODY_SECONDS`` is refused, so
a slow client cannot hold a connection and its buffer for ever. A recording's body without a
length asks its reservation for room as it arrives (``grow``), and is ``busy`` when there is none."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from agent.errors import ServiceError

BODY_SECONDS = 120.0  # a 32 MiB recording at 2 Mbit/s takes about this long


def announced(request: web.Request, limit: int) -> int:
    """The length the body says it has (0 without one), or ``payload_too_large`` over ``limit``."""
    length = request.content_length
    if length is not None and length > limit:
        raise ServiceError("payload_too_large", f"the body is {length} bytes; the limit is {limit}")
    return length or 0


async def read_body(request: web.Request, limit: int, grow: Callable[[int], bool] | None = None) -> bytes:
    """The whole body, at most ``limit`` bytes, or ``payload_too_large`` / ``request_timeout`` (or
    ``busy``: ``grow`` found no room for more of a body without a length)."""
    length = request.content_length
    announced(request, limit)
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while chunk := await request.content.readany():
                if len(body) + len(chunk) > limit:
                    raise ServiceError("payload_too_large", f"the body is more than {limit} bytes, the limit")
                if length is None and grow is not None and not grow(len(chunk)):
                    raise ServiceError("busy", "the recordings waiting to be scored leave no room for the rest "
                                               "of this body; try again later")
                body += chunk
    except TimeoutError:
        raise ServiceError("request_timeout", f"the body did not arrive within {BODY_SECONDS:.0f} s") from None
    return bytes(body)
