"""Is there enough good audio for each provider that learns from samples? (the registry's rules)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers import registry
from providers.spec import Readiness, SampleView


def readiness(provider: str, samples: Sequence[SampleView], threshold: float) -> Readiness:
    dataset = registry.spec(provider).dataset
    if dataset is None:
        return Readiness(True, 0, 0.0, [], 1.0)
    return dataset.readiness(samples, threshold)


def all_providers(samples: Sequence[SampleView], threshold: float) -> dict[str, dict[str, Any]]:
    return {s.name: s.dataset.readiness(samples, threshold).as_dict() for s in registry.SPECS if s.dataset is not None}
