"""Audio from the network, made uniform: mono float32 at 16 kHz, or a clear error."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from providers.common.audio import from_pcm16

ANALYSIS_RATE = 16000  # webrtcvad, DNSMOS and Resemblyzer all work at 16 kHz
MAX_SECONDS = 600.0


class AudioDecodeError(ValueError):
    """The payload is not audio we can use; the message says why."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def decode_wav(data: bytes) -> Audio:
    """Any WAV soundfile reads (8-32 bit PCM, float, mono or stereo), mixed down to mono."""
    import soundfile

    if not data:
        raise AudioDecodeError("empty audio payload")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            rate = int(handle.samplerate)
            if handle.frames > MAX_SECONDS * rate:
                raise AudioDecodeError(f"audio is {handle.frames / rate:.0f} s long; the limit is {MAX_SECONDS:.0f} s")
            frames = handle.read(dtype="float32", always_2d=True)
    except AudioDecodeError:
        raise
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        raise AudioDecodeError(f"not a readable WAV file: {exc}") from exc
    if frames.size == 0:
        raise AudioDecodeError("the WAV file holds no samples")
    if not 4000 <= rate <= 192000:
        raise AudioDecodeError(f"unsupported sample rate {rate} Hz")
    samples = frames.mean(axis=1) if frames.shape[1] > 1 else frames[:, 0]
    if not np.isfinite(samples).all():
        raise AudioDecodeError("the WAV file holds NaN or infinite samples")
    return Audio(np.clip(samples, -1.0, 1.0).astype(np.float32), rate)


def pcm16_to_audio(pcm: bytes, rate: int) -> Audio:
    if len(pcm) % 2:
        raise AudioDecodeError("16-bit PCM frame has an odd number of bytes")
    return Audio(from_pcm16(pcm), rate)


def resample(audio: Audio, rate: int = ANALYSIS_RATE) -> Audio:
    if audio.rate == rate:
        return audio
    import soxr

    out = soxr.resample(audio.samples, audio.rate, rate)
    return Audio(np.clip(out, -1.0, 1.0).astype(np.float32), rate)
