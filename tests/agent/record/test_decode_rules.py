"""The audio decoder's rules (agent/record/decode.py), each at its boundary: the rates and channel
counts a microphone sends, the length a header may claim and the length actually read (a header
can lie), mono mixed from both channels, resampling that keeps the tail, samples clipped to
[-1, 1] in float32, and the exact words of each refusal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile
import soxr

from agent.record.decode import Audio, AudioDecodeError, decode_wav, pcm16_to_audio, resample
from tests.speech import wav


def refusal(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(AudioDecodeError) as caught:
        decode_wav(data, **kwargs)
    return str(caught.value)


def tone(rate: int, seconds: float = 0.5, level: float = 0.5) -> np.ndarray:
    n = int(rate * seconds)
    return (level * np.sin(np.arange(n) * 2 * np.pi * 440 / rate)).astype(np.float32)


@pytest.mark.parametrize("rate", [4000, 96000])
def test_the_rates_a_microphone_sends_pass_at_both_ends(rate: int) -> None:
    assert decode_wav(wav(tone(rate), rate)).rate == rate


@pytest.mark.parametrize("rate", [3999, 96001])
def test_a_rate_just_outside_is_refused_before_decoding(rate: int) -> None:
    assert refusal(wav(tone(rate), rate)) == f"unsupported sample rate {rate} Hz (a microphone sends 4000-96000)"


def test_three_channels_are_refused_and_stereo_is_mixed_from_both() -> None:
    assert refusal(wav(tone(8000), 8000, channels=3)) == "3 channels: send mono or stereo"
    left, right = np.full(800, 0.5, np.float32), np.full(800, 0.1, np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([left, right], axis=1), 8000, subtype="FLOAT", format="WAV")
    audio = decode_wav(buffer.getvalue())
    assert np.allclose(audio.samples, 0.3)


def test_a_header_exactly_at_the_limit_passes_and_one_frame_more_is_refused() -> None:
    assert decode_wav(wav(np.zeros(8000, np.float32), 8000), max_seconds=1.0).seconds == 1.0
    assert refusal(wav(np.zeros(12001, np.float32), 8000), max_seconds=1.5) == "audio is 2 s long; the limit is 1.5 s"


def test_the_empty_and_the_silent_and_the_broken_are_refused_in_words() -> None:
    assert refusal(b"") == "empty audio payload"
    assert refusal(wav(np.zeros(0, np.float32), 16000)) == "the WAV file holds no samples"
    nan = np.array([0.1, np.nan, 0.2], np.float32)
    assert refusal(wav(nan, 16000, "FLOAT")) == "the WAV file holds NaN or infinite samples"


def test_samples_are_clipped_to_one_in_float32() -> None:
    loud = np.array([1.5, -1.5, 0.25, -0.25] * 100, np.float32)
    audio = decode_wav(wav(loud, 16000, "FLOAT"))
    assert audio.samples.dtype == np.float32
    assert audio.samples[:4].tolist() == [1.0, -1.0, 0.25, -0.25]


def test_a_requested_rate_resamples_the_whole_recording_tail_included() -> None:
    source = tone(44100, 1.0)
    audio = decode_wav(wav(source, 44100, "FLOAT"), rate=16000)
    whole = soxr.resample(source, 44100, 16000)
    assert audio.rate == 16000 and audio.samples.dtype == np.float32
    assert len(audio.samples) == len(whole) == 16000
    assert np.abs(audio.samples - whole).max() < 1e-3


WAV_HEAD = b"RIFF\x00\x00\x00\x00WAVE"  # what the sniffer looks at; the stand-in decoder reads the rest


class LyingFile:
    """A SoundFile whose header says it holds nothing: only the blocks read show its length."""

    samplerate, channels, frames, format = 8000, 1, 0, "WAV"

    def __init__(self, blocks: list[int]) -> None:
        self._blocks = blocks
        self.asked: dict[str, Any] = {}

    def __enter__(self) -> LyingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def blocks(self, **kwargs: Any) -> Iterator[np.ndarray]:
        self.asked = kwargs
        for n in self._blocks:
            yield np.full((n, 1), 0.25, np.float32)


def lying(monkeypatch: pytest.MonkeyPatch, blocks: list[int]) -> LyingFile:
    handle = LyingFile(blocks)
    monkeypatch.setattr(soundfile, "SoundFile", lambda _data: handle)
    return handle


def test_what_is_read_is_counted_across_blocks_whatever_the_header_says(monkeypatch: pytest.MonkeyPatch) -> None:
    handle = lying(monkeypatch, [8000, 4000])
    audio = decode_wav(WAV_HEAD, max_seconds=1.5)  # exactly 1.5 s read: passes
    assert len(audio.samples) == 12000 and audio.rate == 8000
    assert handle.asked == {"blocksize": 16000, "dtype": "float32", "always_2d": True}
    lying(monkeypatch, [8000, 4001])
    assert refusal(WAV_HEAD, max_seconds=1.5) == "audio is longer than the limit of 1.5 s"


def test_pcm16_is_read_as_it_comes_and_an_odd_length_is_refused() -> None:
    audio = pcm16_to_audio(np.array([16384, -32768], "<i2").tobytes(), 22050)
    assert audio.rate == 22050 and audio.samples.tolist() == [0.5, -1.0]
    with pytest.raises(AudioDecodeError) as caught:
        pcm16_to_audio(b"\x00\x01\x02", 16000)
    assert str(caught.value) == "16-bit PCM frame has an odd number of bytes"


def test_resampling_clips_the_ringing_of_full_scale_audio() -> None:
    square = np.sign(np.sin(np.arange(44100) * 2 * np.pi * 300 / 44100)).astype(np.float32)
    out = resample(Audio(square, 44100), 16000)
    assert out.rate == 16000 and out.samples.dtype == np.float32
    assert out.samples.max() == 1.0 and out.samples.min() == -1.0
    same = Audio(square, 16000)
    assert resample(same) is same
