"""Audio announced over Wyoming at the rate it was made (agent/wyoming/speech.py): a Kokoro
voice speaks at 24 kHz, Piper's at 22.05 kHz; a rate fixed at the common case would play
Kokoro's audio too slow and too low. The start, every chunk, and the empty answer's start."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from wyoming.audio import AudioChunk, AudioStart
from wyoming.tts import Synthesize

from agent.speak.requests import SpeakRequest
from agent.speak.service import AudioOut
from providers.common.audio import wav_bytes
from tests.agent.wyoming.test_handler import Core, converse

KOKORO = wav_bytes(b"\x01\x00" * 3000, 24000)


class Silent(Core):
    """Answers without a sentence, at Kokoro's rate."""

    def speak(self, profile: str, request: SpeakRequest, out: AudioOut) -> Future[dict[str, Any]]:
        done: Future[dict[str, Any]] = Future()
        done.set_result({"id": request.id, "sample_rate": 24000})
        return done


def test_a_kokoro_voices_audio_is_announced_at_24_khz_mono_16_bit() -> None:
    written, _ = converse(Core(chunks=2, wav=KOKORO), Synthesize(text="Two. Sentences.").event())
    start = AudioStart.from_event(written[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    chunks = [AudioChunk.from_event(e) for e in written if AudioChunk.is_type(e.type)]
    assert chunks and {(c.rate, c.width, c.channels) for c in chunks} == {(24000, 2, 1)}
    assert sum(len(c.audio) for c in chunks) == 2 * 6000


def test_an_answer_without_audio_is_announced_at_the_rate_it_gives() -> None:
    written, _ = converse(Silent(), Synthesize(text="Hi.").event())
    assert [e.type for e in written] == ["audio-start", "audio-stop"]
    assert AudioStart.from_event(written[0]).rate == 24000
