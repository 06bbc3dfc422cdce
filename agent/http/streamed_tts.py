"""``POST /api/tts`` as it is made: the first bytes leave when the first sentence is ready.

The answer is one file in the request's format (``accept.py``), its bytes as the speak worker
encodes them (agent/speak/delivery.py: the out is ``continuous``): a WAV whose header says "length
open" (``0xFFFFFFFF`` in the RIFF and data sizes, as streaming encoders write it: players and
decoders read to the end of the stream) then each sentence's PCM, an MP3's frames, an Ogg/Opus
stream's pages; a FLAC leaves whole at the end (encoding.py says why). The OpenAI route sends its
raw audio through the same ``EncodedStream``. The headers go with the
first sentence, so they name the voice that speaks (nothing falls back once audio went out);
what only the end knows (``X-Audio-Seconds``, ``X-Latency-Ms``) needs ``"stream": false``.
A refusal before any audio is the usual JSON error with its status; a failure after the first
bytes can only cut the answer short: the connection is closed without the last chunk, so the
client sees an incomplete body, never a WAV that looks whole.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from agent.speak.departure import Departure
from agent.speak.handoff import DONE, LoopAudio

log = logging.getLogger(__name__)

class EncodedStream(LoopAudio):
    """A door's ``AudioOut`` for one streamed file: who speaks, then the encoded bytes as the speak
    worker makes them, queued on the loop; ``DONE`` after the answer (``finished``)."""

    continuous = True  # one stream, not a file per sentence (agent/speak/delivery.py)

    def __init__(self, loop: asyncio.AbstractEventLoop, departure: Departure, where: str = "http") -> None:
        super().__init__(loop, departure, where)
        self.speaker: dict[str, Any] = {}

    def begin(self, request_id: str, speaker: dict[str, Any]) -> None:
        self.speaker = {"id": request_id, **speaker}  # read on the loop after the chunk that follows


def headers_of(speaker: dict[str, Any]) -> dict[str, str]:
    headers = {"X-Request-Id": str(speaker.get("id", "")), "X-Provider": str(speaker.get("provider", "")),
               "X-Voice": str(speaker.get("voice", "")), "X-Cached": json.dumps(bool(speaker.get("cached"))),
               "X-Fallback": json.dumps(bool(speaker.get("fallback")))}
    if speaker.get("fallback_code"):
        headers["X-Fallback-Reason"] = str(speaker["fallback_code"])
    return headers


async def serve(request: web.Request, answer: asyncio.Future[dict[str, Any]], out: EncodedStream,
                media_type: str) -> web.StreamResponse:
    """The streamed answer; raises the request's error when it failed before any audio."""
    answer.add_done_callback(out.finished)
    response: web.StreamResponse | None = None
    while (audio := await out.queue.get()) is not DONE:
        if response is None:
            response = web.StreamResponse(headers={"Content-Type": media_type, **headers_of(out.speaker)})
            response.enable_chunked_encoding()
            await response.prepare(request)
        await response.write(audio)
    error = answer.exception()
    if response is None:
        if error is not None:
            raise error
        raise RuntimeError("the speak request was answered without audio")
    if error is not None:
        log.warning("HTTP speech cut short after its first bytes: %s", error)
        if request.transport is not None:
            request.transport.abort()  # no last chunk: the client sees the body is incomplete
        return response
    await response.write_eof()
    return response
