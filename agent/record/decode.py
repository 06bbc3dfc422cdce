"""Audio from the network, made uniform: mono float32 at 16 kHz, or a clear error.

What it takes (``sniff.py``): WAV, FLAC, OGG Vorbis or Opus, MP3, through libsndfile (MP3 since
libsndfile 1.1; the wheel's is 1.2). What a file of any size can decode to is bounded by
``max_seconds`` at the analysis rate (600 s at 16 kHz: 38 MB of float32), whatever its header
says: a small compressed file that claims hours is refused by its header, one that states no
length at all (a FLAC streamed without one) is refused too, and what is read is counted block by
block, in case a header understated it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.record.sniff import OPENS_AS, HeaderError, kind_of
from providers.common.audio import from_pcm16

ANALYSIS_RATE = 16000  # webrtcvad, DNSMOS and Resemblyzer all work at 16 kHz
MAX_SECONDS = 600.0
# What a microphone sends. The header is checked before a sample is decoded: a 1 MB FLAC that
# claims 655 350 Hz, or 8 channels at 192 kHz for ten minutes, would decode to gigabytes.
RATES = (4000, 96000)
MAX_CHANNELS = 2
BLOCK_SECONDS = 2.0  # decoded (and resampled) a block at a time: memory follows the output, not the input
UNKNOWN_FRAMES = 2**62  # libsndfile's count for a file that does not state its length (SF_COUNT_MAX)


class AudioDecodeError(ValueError):
    """The payload is not audio we can use; the message says why."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def decode_wav(data: bytes, rate: int | None = None, max_seconds: float = MAX_SECONDS) -> Audio:
    """A WAV, FLAC, OGG (Vorbis, Opus) or MP3 recording, mixed down to mono, at ``rate`` when given.

    Refused before decoding: other containers, a WAV that states far more audio than it holds,
    rates and channel counts no microphone sends, and a header that says it is longer than
    ``max_seconds``; refused while decoding: more audio than that, NaN."""
    import soundfile

    if not data:
        raise AudioDecodeError("empty audio payload")
    try:
        kind = kind_of(data)
    except HeaderError as exc:
        raise AudioDecodeError(str(exc)) from None
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            if handle.format not in OPENS_AS[kind]:
                raise AudioDecodeError(f"not a readable {kind} file: it opens as {handle.format}")
            source_rate, channels = int(handle.samplerate), int(handle.channels)
            if not RATES[0] <= source_rate <= RATES[1]:
                raise AudioDecodeError(f"unsupported sample rate {source_rate} Hz (a microphone sends {RATES[0]}-{RATES[1]})")
            if channels > MAX_CHANNELS:
                raise AudioDecodeError(f"{channels} channels: send mono or stereo")
            limit = int(max_seconds * source_rate)
            if handle.frames >= UNKNOWN_FRAMES:  # libsndfile cannot read such a file to its end either
                raise AudioDecodeError(f"the {kind} file does not say how long it is: save it again with an editor")
            if handle.frames > limit:
                raise AudioDecodeError(f"audio is {handle.frames / source_rate:.0f} s long; the limit is {max_seconds:g} s")
            samples = _read_mono(handle, source_rate, rate or source_rate, limit, max_seconds)
    except AudioDecodeError:
        raise
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        why = getattr(exc, "error_string", None) or str(exc)  # libsndfile's words, without the BytesIO's repr
        raise AudioDecodeError(f"not a readable {kind} file: {why}") from exc
    if samples.size == 0:
        raise AudioDecodeError(f"the {kind} file holds no samples")
    if not np.isfinite(samples).all():
        raise AudioDecodeError(f"the {kind} file holds NaN or infinite samples")
    return Audio(np.clip(samples, -1.0, 1.0).astype(np.float32), rate or source_rate)


def _read_mono(handle: Any, source_rate: int, rate: int, limit: int, max_seconds: float) -> np.ndarray:
    resampler = None
    if rate != source_rate:
        import soxr

        resampler = soxr.ResampleStream(source_rate, rate, 1, dtype="float32")
    parts, read = [], 0
    for block in handle.blocks(blocksize=int(BLOCK_SECONDS * source_rate), dtype="float32", always_2d=True):
        read += len(block)
        if read > limit:
            raise AudioDecodeError(f"audio is longer than the limit of {max_seconds:g} s")
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        parts.append(resampler.resample_chunk(mono) if resampler is not None else mono)
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


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
