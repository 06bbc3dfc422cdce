"""agent/speak/delivery.py and the cache's encoded entries, in process: each streamed sentence a
file of its own in the format asked, a ``continuous`` out one stream, a cache hit served in its
format from the cache's copy (the key carries the format), the request model's ``format``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from agent.commands import validate
from agent.errors import ServiceError
from agent.speak import delivery as delivery_module
from agent.speak.cache import AudioCache, cache_name
from agent.speak.delivery import Delivery
from agent.speak.pipeline import SpeakJob, SpeakResult
from agent.speak.requests import SpeakRequest
from providers.base import AudioChunk

RATE = 22050


def tone(seconds: float, hz: float = 220.0) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


class Out:
    def __init__(self, continuous: bool = False) -> None:
        self.continuous = continuous
        self.chunks: list[bytes] = []
        self.wholes: list[bytes] = []

    def chunk(self, request_id: str, seq: int, audio: bytes) -> None:
        assert seq == len(self.chunks)
        self.chunks.append(audio)

    def whole(self, request_id: str, audio: bytes) -> None:
        assert request_id == "j1"  # the request's own id: the door names its answer by it
        self.wholes.append(audio)

    def where(self, request_id: str, stream: bool) -> str:
        return "test"


def job(fmt: str, stream: bool = True, text: str = "One. Two.") -> SpeakJob:
    return SpeakJob("j1", text, None, None, None, stream, 0.0, format=fmt)


def decoded(data: bytes) -> tuple[int, int, str]:
    info = soundfile.info(io.BytesIO(data))
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    return rate, len(samples), info.format


def test_each_streamed_sentence_is_a_file_of_its_own_in_the_format() -> None:
    out = Out()
    sending = Delivery(out, job("mp3"), None)
    sentences = [tone(0.5), tone(1.0, 330)]
    for pcm in sentences:
        sending.sentence(AudioChunk(pcm, RATE))
    sending.done(SpeakResult("piper", "v", b"".join(sentences), RATE, False, 2, 1.0))
    assert len(out.chunks) == 2 and not out.wholes
    for data, pcm in zip(out.chunks, sentences, strict=True):
        rate, length, kind = decoded(data)
        assert (rate, kind) == (RATE, "MP3") and abs(length - len(pcm) // 2) < RATE * 0.1


def test_an_out_that_says_nothing_of_streams_gets_a_file_per_sentence() -> None:
    class Plain:  # the MQTT door's out: no ``continuous``
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def chunk(self, request_id: str, seq: int, audio: bytes) -> None:
            self.chunks.append(audio)

    out = Plain()
    sending = Delivery(out, job("wav"), None)
    for pcm in (tone(0.3), tone(0.3, 330)):
        sending.sentence(AudioChunk(pcm, RATE))
    assert [decoded(data)[2] for data in out.chunks] == ["WAV", "WAV"]  # two files, each with its header


def test_a_continuous_out_gets_one_stream() -> None:
    out = Out(continuous=True)
    sending = Delivery(out, job("opus"), None)
    sentences = [tone(0.6), tone(0.6, 330)]
    for pcm in sentences:
        sending.sentence(AudioChunk(pcm, RATE))
    sending.done(SpeakResult("piper", "v", b"".join(sentences), RATE, False, 2, 1.0))
    assert len(out.chunks) >= 2  # pages leave within a sentence, not all at the end
    rate, length, kind = decoded(b"".join(out.chunks))
    assert (rate, kind) == (24000, "OGG") and abs(length - 1.2 * 24000) < 24000 * 0.1


def test_an_answer_that_is_not_streamed_is_one_file() -> None:
    out = Out()
    pcm = tone(0.5)
    Delivery(out, job("flac", stream=False), None).done(SpeakResult("piper", "v", pcm, RATE, False, 1, 1.0))
    assert not out.chunks and decoded(out.wholes[0]) == (RATE, len(pcm) // 2, "FLAC")


def test_a_cache_hit_is_served_in_its_format_from_the_cache_s_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = AudioCache(tmp_path, 10**7)
    pcm = tone(0.5)
    cache.put("k", "One. Two.", pcm, RATE)
    hit = SpeakResult("piper", "v", pcm, RATE, True, 1, 1.0, cache_key="k")
    first, again, flac = Out(), Out(), Out()
    made = Delivery(first, job("mp3"), cache)
    made.done(hit)
    assert decoded(first.chunks[0])[2] == "MP3"
    assert cache.get_encoded("k", "One. Two.", "mp3") is None  # not before the answer has gone
    made.keep(hit)
    assert cache.get_encoded("k", "One. Two.", "mp3") == first.chunks[0]

    def no_encoding(*args: Any) -> bytes:
        raise AssertionError("a hit in a format the cache keeps is not encoded again")

    monkeypatch.setattr(delivery_module, "encode", no_encoding)
    Delivery(again, job("mp3"), cache).done(hit)
    assert again.chunks == first.chunks
    with pytest.raises(AssertionError):  # another format is another entry: made, never the MP3
        Delivery(flac, job("flac"), cache).done(hit)


def test_a_wav_answer_is_made_from_the_audio_in_hand_not_read_again(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cache = AudioCache(tmp_path, 10**7)
    pcm = tone(0.5)
    cache.put("k", "One. Two.", pcm, RATE)

    def no_reading(*args: Any) -> bytes:
        raise AssertionError("the WAV of a hit is its PCM, already read")

    monkeypatch.setattr(cache, "get_encoded", no_reading)
    out = Out()
    hit = SpeakResult("piper", "v", pcm, RATE, True, 1, 1.0, cache_key="k")
    made = Delivery(out, job("wav", stream=False), cache)
    made.done(hit)
    made.keep(hit)
    assert decoded(out.wholes[0]) == (RATE, len(pcm) // 2, "WAV")


def test_the_cache_keys_each_format_apart_and_keeps_them_across_restarts(tmp_path: Path) -> None:
    assert cache_name("k", "t", "mp3") != cache_name("k", "t", "flac") != cache_name("k", "t")
    assert cache_name("k", "t", "mp3").endswith(".mp3")
    with pytest.raises(ValueError):
        cache_name("k", "t", "../x")
    cache = AudioCache(tmp_path, 10**6)
    cache.put_encoded("k", "t", "mp3", b"mp3 bytes")
    cache.put_encoded("k", "t", "flac", b"flac bytes")
    again = AudioCache(tmp_path, 10**6)
    assert (again.get_encoded("k", "t", "mp3"), again.get_encoded("k", "t", "flac")) == (b"mp3 bytes", b"flac bytes")
    assert again.get_encoded("k", "t", "opus") is None and again.get("k", "t") is None
    small = AudioCache(tmp_path / "small", 15)  # the encoded forms count against the bound too
    small.put_encoded("k", "t", "mp3", b"mp3 bytes")
    small.put_encoded("k", "t", "flac", b"flac bytes")
    assert small.get_encoded("k", "t", "mp3") is None and small.get_encoded("k", "t", "flac") == b"flac bytes"


def test_the_request_s_format() -> None:
    command: Any = type("C", (), {"model": SpeakRequest})
    assert validate(command, {"text": "Hi."}).format == "wav"
    for name in ("mp3", "opus", "flac", "wav", "pcm"):
        assert validate(command, {"text": "Hi.", "format": name}).format == name
    for bad in ("aac", "MP3", "ogg", ""):
        with pytest.raises(ServiceError) as refused:
            validate(command, {"text": "Hi.", "format": bad})
        assert refused.value.code == "invalid_payload" and "format" in str(refused.value)
