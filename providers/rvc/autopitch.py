"""``pitchShift: "auto"``: the semitones from the base voice's median pitch to the owner's,
measured on the owner's recorded samples (``out/voices/samples/``)."""

from __future__ import annotations

import logging
import math
import wave
from dataclasses import dataclass

import numpy as np

from providers.base import Provider, ProviderContext, ProviderError
from providers.common.audio import from_pcm16, read_wav_pcm
from providers.settings_base import ProviderSettings

log = logging.getLogger(__name__)

CALIBRATION_TEXT = (
    "Good morning. The weather today is mild, with a light breeze from the west. "
    "Would you like me to read the news, or play some music instead?"
)
MAX_SAMPLES = 12  # the newest; harvest costs about a fifth of their duration


@dataclass(frozen=True)
class PitchSuggestion:
    base_hz: float
    owner_hz: float
    samples: int
    semitones: int

    def describe(self) -> str:
        return (
            f"base voice median {self.base_hz:.0f} Hz, owner median {self.owner_hz:.0f} Hz "
            f"over {self.samples} sample(s): pitchShift {self.semitones:+d}"
        )


def samples_tag(ctx: ProviderContext) -> str:
    """Changes when samples are added or removed (the folder's mtime) - cheap enough per request."""
    folder = ctx.samples_dir
    return f"{folder.stat().st_mtime_ns:x}" if folder.is_dir() else "none"


def owner_median(ctx: ProviderContext) -> tuple[float, int]:
    """Median f0 over the newest samples' voiced frames, and how many samples were used."""
    from providers.rvc.convert import resample
    from providers.rvc.pitch import median_f0

    files = sorted(ctx.samples_dir.glob("*.wav"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    medians = []
    for path in files[:MAX_SAMPLES]:
        try:
            pcm, rate = read_wav_pcm(path.read_bytes())  # the record path stores 16-bit mono
            audio = from_pcm16(pcm)
        except (OSError, ValueError, EOFError, wave.Error) as exc:
            log.warning("skipping sample %s: %s", path.name, exc)
            continue
        value = median_f0(resample(audio, rate, 16000))
        if value is not None:
            medians.append(value)
    if not medians:
        raise ProviderError(
            f"pitchShift 'auto' needs the owner's recorded samples in {ctx.samples_dir}; none with voiced speech found "
            "(record some, or set a number of semitones)"
        )
    return float(np.median(medians)), len(medians)


def base_median(base: Provider, settings: ProviderSettings, ctx: ProviderContext) -> float:
    from providers.rvc.convert import resample
    from providers.rvc.pitch import median_f0

    parts, rate = [], 0
    for chunk in base.synthesize(CALIBRATION_TEXT, settings, ctx):
        parts.append(from_pcm16(chunk.pcm))
        rate = chunk.sample_rate
    value = median_f0(resample(np.concatenate(parts), rate, 16000)) if parts else None
    if value is None:
        raise ProviderError("pitchShift 'auto': the base voice produced no voiced speech to measure")
    return value


def semitones_between(base_hz: float, owner_hz: float) -> int:
    return max(-12, min(12, round(12 * math.log2(owner_hz / base_hz))))


def suggest(base: Provider, settings: ProviderSettings, ctx: ProviderContext) -> PitchSuggestion:
    owner, count = owner_median(ctx)
    base_hz = base_median(base, settings, ctx)
    return PitchSuggestion(base_hz, owner, count, semitones_between(base_hz, owner))
