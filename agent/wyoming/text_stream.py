"""Streaming synthesis (``synthesize-start``, ``synthesize-chunk``..., ``synthesize-stop``): text
arrives as a language model writes it, and each sentence is spoken as soon as it is complete.

Sentences are cut by ``sentence_stream`` (what wyoming-piper uses) and spoken one after the
other by a task of their own, so the connection keeps reading text while the first sentence is
being spoken. Each sentence is one speak request with its own ``audio-start``/``audio-stop``,
as wyoming-piper frames them; Home Assistant takes the format from the first ``audio-start``
and plays the chunks until ``synthesize-stopped``. After a refusal (its ``error`` event is the
answer) the rest of that stream is not spoken; ``synthesize-stopped`` still ends it. When the
connection ends, the sentences still queued are dropped.
"""

from __future__ import annotations

import asyncio
import logging

from sentence_stream import SentenceBoundaryDetector

from agent.voices.picks import VoicePick
from agent.wyoming.speech import Speech

log = logging.getLogger(__name__)


class TextStream:
    def __init__(self, speech: Speech, pick: VoicePick, max_chars: int) -> None:
        self._speech = speech
        self._pick = pick
        self._max_chars = max_chars
        self._cutter = SentenceBoundaryDetector()
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._speak_in_order(), name="wyoming text stream")

    def add(self, text: str) -> None:
        for sentence in self._cutter.add_chunk(text):
            self._sentences.put_nowait(sentence)
        waiting = len(self._cutter.current_sentence) + len(self._cutter.remaining_text)
        if waiting > self._max_chars:  # no sentence end in sight: the core refuses it as too long
            self._flush()

    async def finish(self) -> None:
        """Speak what is left and wait until every sentence's audio was written."""
        self._flush()
        self._sentences.put_nowait(None)
        await self._task

    def cancel(self) -> int:
        """Stop speaking (the connection has ended); how many queued sentences are dropped."""
        self._task.cancel()
        dropped = 0
        while not self._sentences.empty():
            dropped += self._sentences.get_nowait() is not None
        return dropped

    def _flush(self) -> None:
        rest = self._cutter.finish()
        if rest:
            self._sentences.put_nowait(rest)

    async def _speak_in_order(self) -> None:
        refused = False
        while (sentence := await self._sentences.get()) is not None:
            if not refused:
                refused = not await self._speech.say(sentence, self._pick)
