"""agent/speak/encoding.py: whole files and streams decode to the samples put in, at the rate each
format promises; a stream hands bytes out before its end; refused formats say so."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from agent.errors import ServiceError
from agent.speak.encoding import FORMATS, StreamEncoder, _StreamSink, audio_format, encode

RATE = 22050


def tone(seconds: float, rate: int = RATE) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()


def decode(data: bytes, name: str) -> tuple[np.ndarray, int]:
    if name == "pcm":
        return np.frombuffer(data, dtype="<i2"), 24000
    with soundfile.SoundFile(io.BytesIO(data)) as f:
        return np.concatenate([*f.blocks(blocksize=4096, dtype="int16")]), f.samplerate


@pytest.mark.parametrize(("name", "rate", "slack"), [("wav", RATE, 0), ("pcm", 24000, 0.01), ("mp3", RATE, 0.12),
                                                      ("opus", 24000, 0.01), ("flac", RATE, 0)])
def test_whole_and_streamed_decode_to_the_same_length_and_rate(name: str, rate: int, slack: float) -> None:
    pcm = tone(2.0)
    whole, whole_rate = decode(encode(pcm, RATE, name), name)
    encoder = StreamEncoder(name)
    parts = [encoder.feed(pcm[i:i + 8820], RATE) for i in range(0, len(pcm), 8820)]
    parts.append(encoder.finish())
    streamed, streamed_rate = decode(b"".join(parts), name)
    assert whole_rate == streamed_rate == rate
    assert abs(len(whole) / rate - 2.0) <= slack / 4 + 1e-3  # a whole file knows its own length
    assert abs(len(streamed) / rate - 2.0) <= slack + 1e-3
    if FORMATS[name].streams:
        assert sum(1 for part in parts[:-1] if part) >= len(parts) // 2  # bytes leave before the end
    if name in ("wav", "flac"):  # lossless: the very samples
        assert np.array_equal(streamed, np.frombuffer(pcm, dtype="<i2"))


def test_a_streamed_wav_has_open_lengths() -> None:
    encoder = StreamEncoder("wav")
    head = encoder.feed(tone(0.1), RATE)
    assert head[4:8] == b"\xff\xff\xff\xff" and head[40:44] == b"\xff\xff\xff\xff"
    assert int.from_bytes(head[24:28], "little") == RATE


def test_mp3_is_constant_bit_rate() -> None:
    """libsndfile estimates a stream's length from its first frame's bit rate: VBR would cut it short."""
    encoder = StreamEncoder("mp3")
    data = encoder.feed(tone(2.0), RATE) + encoder.finish()
    kbps = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)  # MPEG-2 layer III
    rates, at = [], 0
    while at + 4 <= len(data):  # frame by frame: sync, then the length its header says
        assert data[at] == 0xFF and data[at + 1] == 0xF3, at
        rate = kbps[data[at + 2] >> 4]
        rates.append(rate)
        at += 72 * rate * 1000 // RATE + (data[at + 2] >> 1 & 1)
    assert at == len(data) and len(rates) > 30 and set(rates) == {56}


def test_a_fallback_voice_at_another_rate_is_resampled_into_the_stream() -> None:
    encoder = StreamEncoder("wav")
    out = encoder.feed(tone(1.0), RATE) + encoder.feed(tone(1.0, 24000), 24000) + encoder.finish()
    samples, rate = decode(out, "wav")
    assert rate == RATE and abs(len(samples) - 2 * RATE) <= 2


def test_the_sink_drops_rewrites_of_bytes_already_sent() -> None:
    sink = _StreamSink()
    sink.write(b"head0000")
    assert sink.take() == b"head0000"
    sink.write(b"body")
    sink.seek(4)
    sink.write(b"LEN!xx")  # half over sent bytes, half over pending ones
    sink.seek(0, io.SEEK_END)
    sink.write(b"tail")
    assert sink.take() == b"xxdytail"
    assert sink.tell() == 16


@pytest.mark.parametrize("name", ["aac", "ogg", "WAV", ""])
def test_unsupported_formats_are_refused(name: str) -> None:
    with pytest.raises(ServiceError) as refused:
        audio_format(name)
    assert refused.value.code == "unsupported_format" and "mp3" in str(refused.value)
