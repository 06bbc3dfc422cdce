"""A request's body, read within the route's own limit: a JSON route holds at most
``max_request_bytes`` of it, only the audio routes up to ``max_audio_bytes``. A body that says it
is larger (Content-Length) is refused before a byte of it is read; one without a length (chunked)
is cut as soon as it passes the limit; one that takes longer than ``BODY_SECONDS`` is refused, so
a slow client cannot hold a connection and its buffer for ever."""

from __future__ import annotations

import asyncio

from aiohttp import web

from agent.errors import ServiceError

BODY_SECONDS = 120.0  # a 32 MiB recording at 2 Mbit/s takes about this long


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes, or ``payload_too_large`` / ``request_timeout``."""
    length = request.content_length
    if length is not None and length > limit:
        raise ServiceError("payload_too_large", f"the body is {length} bytes; the limit is {limit}")
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while chunk := await request.content.readany():
                body += chunk
                if len(body) > limit:
                    raise ServiceError("payload_too_large", f"the body is more than {limit} bytes, the limit")
    except TimeoutError:
        raise ServiceError("request_timeout", f"the body did not arrive within {BODY_SECONDS:.0f} s") from None
    return bytes(body)
