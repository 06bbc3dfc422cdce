"""One request's audio on its way to the door, in the format the request asked for (``wav``,
``mp3``, ``opus``, ``flac``, ``pcm``): the one place where speech is encoded, on the speak
worker's thread, whichever door asked.

A door's ``AudioOut`` gets audio in one of two shapes:
- files (the default): each streamed sentence is a complete file in the format, decodable alone
  (an MQTT message, a WebSocket frame), and an answer that is not streamed is one complete file.
- one stream (an out with ``continuous = True``: the streamed ``POST /api/tts``, the OpenAI
  route): the bytes of a single file as ``encoding.StreamEncoder`` makes them, handed on as they
  are ready; its ``chunk``'s ``seq`` only counts the pieces.
A cache hit is sent whole as one complete file (in a stream too: it is the stream's only piece), in
the encoded form the cache keeps for that format, so a hit costs no encoding; a form the cache
does not have yet is encoded once and kept (``AudioCache.put_encoded``).

What a request leaves in the cache (the audio made for it, a form encoded for it) is written by
``keep``, once its answer has gone: a cache write ends with an fsync, which on a home server's SD
card can take tens of milliseconds, and no caller should wait for a copy kept for the next one.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.speak.cache import AudioCache
from agent.speak.encoding import StreamEncoder, audio_format, encode
from agent.speak.pipeline import SpeakJob, SpeakResult
from providers.base import AudioChunk

log = logging.getLogger(__name__)


def wants_stream(out: Any) -> bool:
    """Whether the door takes one continuous stream rather than a file per sentence."""
    return bool(getattr(out, "continuous", False))


class Delivery:
    """The audio of one request, encoded for its ``AudioOut``: ``sentence`` as the engine makes
    each (streamed requests), ``done`` once the pipeline returns, ``keep`` once the answer has gone.
    Not thread-safe: the speak worker is its only caller."""

    def __init__(self, out: Any, job: SpeakJob, cache: AudioCache | None) -> None:
        self.format = audio_format(job.format)
        self._out = out
        self._job = job
        self._cache = cache
        self._encoder = StreamEncoder(job.format) if job.stream and wants_stream(out) else None
        self._sent = 0  # pieces handed to the out
        self._encoded: dict[str, bytes] = {}  # forms encoded for this answer that the cache lacks

    def sentence(self, chunk: AudioChunk) -> None:
        """One piece the engine made (a streamed request): a file, or the stream's next bytes."""
        if self._encoder is None:
            self._send(encode(chunk.pcm, chunk.sample_rate, self.format.name))
        else:
            self._send(self._encoder.feed(chunk.pcm, chunk.sample_rate))

    def done(self, result: SpeakResult) -> None:
        """The request's audio is all made: a hit or an answer that is not streamed leaves whole, a
        stream its last bytes."""
        if result.cached or not self._job.stream:
            data = self.whole(result)
            if self._job.stream:
                self._send(data)
            else:
                self._out.whole(self._job.id, data)
        elif self._encoder is not None:
            self._send(self._encoder.finish())

    def whole(self, result: SpeakResult) -> bytes:
        """The utterance as one file in the format: the cache's copy, else encoded (and kept)."""
        name = self.format.name
        cache, key = self._cache, result.cache_key
        if name == "wav" or cache is None or key is None:
            return encode(result.pcm, result.sample_rate, name)
        kept = cache.get_encoded(key, self._job.text, name)
        if kept is not None:
            return kept
        data = encode(result.pcm, result.sample_rate, name)
        self._encoded[name] = data  # kept by ``keep``, after the answer
        return data

    def keep(self, result: SpeakResult) -> None:
        """Into the cache, once the answer is out: the audio made for this request, and a form
        encoded for it. A copy that cannot be written (a full disk) costs the cache, not the answer."""
        keep_audio(self._cache, self._job.text, result, self._encoded)

    def _send(self, data: bytes) -> None:
        if data:
            self._out.chunk(self._job.id, self._sent, data)
            self._sent += 1


def keep_audio(cache: AudioCache | None, text: str, result: SpeakResult,
               encoded: dict[str, bytes] | None = None) -> None:
    """``result``'s audio into ``cache`` when it was made now (a hit is there already), and the
    ``encoded`` forms of it by format."""
    if cache is None or result.cache_key is None:
        return
    try:
        if not result.cached:
            cache.put(result.cache_key, text, result.pcm, result.sample_rate)
        for name, data in (encoded or {}).items():
            cache.put_encoded(result.cache_key, text, name, data)
    except OSError as exc:
        log.warning("could not cache audio: %s", exc)
