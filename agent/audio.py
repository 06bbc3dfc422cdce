"""WAV in and out for the speak path (16-bit mono PCM, as every provider produces)."""

from __future__ import annotations

import io
import wave


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
