"""Is there enough good audio to train each provider? (the seed's requirements)"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from agent.record.store import Sample

SOVITS_REFERENCE_SECONDS = (5.0, 10.0)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    samples: int
    minutes: float
    missing: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _readiness(samples: list[Sample], min_count: int, min_minutes: float, extra: list[str]) -> Readiness:
    minutes = sum(s.duration for s in samples) / 60
    missing = list(extra)
    if len(samples) < min_count:
        missing.append(f"{min_count - len(samples)} more samples (have {len(samples)}, need {min_count})")
    if minutes < min_minutes:
        missing.append(f"{min_minutes - minutes:.1f} more minutes (have {minutes:.1f}, need {min_minutes:g})")
    return Readiness(not missing, len(samples), round(minutes, 2), missing)


def rvc(samples: list[Sample], threshold: float) -> Readiness:
    extra = []
    if samples:
        average = sum(s.score for s in samples) / len(samples)
        if average < threshold:
            extra.append(f"average quality {average:.0f} below {threshold:g}")
    return _readiness(samples, 50, 10.0, extra)


def kokoro(samples: list[Sample]) -> Readiness:
    return _readiness([s for s in samples if s.transcript], 30, 5.0, [])


def sovits_reference(samples: list[Sample]) -> Sample | None:
    """The best 5-10 s sample with a transcript."""
    low, high = SOVITS_REFERENCE_SECONDS
    fitting = [s for s in samples if s.transcript and low <= s.duration <= high]
    return max(fitting, key=lambda s: s.score, default=None)


def sovits(samples: list[Sample]) -> Readiness:
    best = sovits_reference(samples)
    missing = [] if best else ["one clean 5-10 s sample with its transcript"]
    return Readiness(best is not None, int(best is not None), round(best.duration / 60, 2) if best else 0.0, missing)


def all_providers(samples: list[Sample], threshold: float) -> dict[str, dict[str, Any]]:
    return {
        "rvc": rvc(samples, threshold).as_dict(),
        "kokoro": kokoro(samples).as_dict(),
        "sovits": sovits(samples).as_dict(),
    }
