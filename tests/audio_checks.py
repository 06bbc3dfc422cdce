"""What the tests check about audio: a real WAV that holds speech-like signal."""

from __future__ import annotations

import io
import wave

import numpy as np

from providers.piper.chunked import FIRST_FRAMES

# A text's first sentence may leave in two parts (a split Piper voice that has spoken before):
# the first is this long for the bundled voice (256 samples a frame at 22050 Hz).
FIRST_PART_SECONDS = FIRST_FRAMES * 256 / 22050


def wav_info(data: bytes) -> tuple[int, float, float]:
    """(sample rate, seconds, RMS in [0, 1]) of a 16-bit mono WAV."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    rms = float(np.sqrt(np.mean((samples / 32768.0) ** 2))) if samples.size else 0.0
    return rate, samples.size / rate, rms


def assert_speech(data: bytes, min_seconds: float = 0.9 * FIRST_PART_SECONDS, rate: int = 22050) -> float:
    """The default length is the shortest streamed part: a split voice's first."""
    got_rate, seconds, rms = wav_info(data)
    assert got_rate == rate
    assert seconds >= min_seconds, f"only {seconds:.2f} s of audio"
    assert rms > 0.02, f"audio is near silent (RMS {rms:.4f})"
    return seconds
