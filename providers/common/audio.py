"""16-bit mono PCM and WAV, the one audio format every provider produces and the agent publishes."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from providers.base import AudioChunk


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] (clipped) as little-endian int16 PCM."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def from_pcm16(pcm: bytes) -> np.ndarray:
    """Little-endian int16 PCM as float32 in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def whole_sentences(chunks: Iterable[AudioChunk]) -> Iterator[AudioChunk]:
    """``chunks`` with each sentence's parts (``AudioChunk.partial``) joined into one: for whoever
    must take a sentence whole (a converter hears a seam where a part ends)."""
    held: list[AudioChunk] = []
    for chunk in chunks:
        held.append(chunk)
        if not chunk.partial:
            yield held[0] if len(held) == 1 else AudioChunk(b"".join(c.pcm for c in held), chunk.sample_rate,
                                                            "".join(c.text for c in held))
            held = []
    if held:  # an engine that ended on a part: what it said is all there is
        yield AudioChunk(b"".join(c.pcm for c in held), held[-1].sample_rate, "".join(c.text for c in held))


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def read_wav_pcm(data: bytes) -> tuple[bytes, int]:
    """PCM and sample rate of a 16-bit mono WAV; raises ``wave.Error``/``EOFError`` when it is not one."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise wave.Error("expected 16-bit mono")
        frames = wav.getnframes()
        pcm = wav.readframes(frames)
        if len(pcm) != frames * 2:
            raise EOFError("truncated WAV data")
        return pcm, wav.getframerate()


def read_audio_file(path: Path) -> tuple[np.ndarray, int]:
    """Any file libsndfile reads (WAV of any depth, FLAC, ...) as mono float32 and its rate."""
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(rate)
