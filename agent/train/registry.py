"""Which trainer builds which provider's voice: the providers' specs, plus trainers named in the
settings (plugins, tests). Trainer classes are imported in the job's own process."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from providers import registry
from providers.spec import TrainerSpec


def trainers(extra: dict[str, str]) -> dict[str, TrainerSpec]:
    """provider -> its trainer; an extra trainer's parameters come from its class, loaded here,
    and so do its optional ``planned_steps(params)``, ``voice_settings(outputs, speaker, params)`` and
    ``planned_memory_mb(params)``."""
    found = {spec.name: spec.trainer for spec in registry.SPECS if spec.trainer is not None}
    for name, target in extra.items():
        trainer = load_trainer(target)
        params: type[BaseModel] = trainer.params_model
        found[name] = TrainerSpec(target, params, f"{name}-models", steps=getattr(trainer, "planned_steps", None),
                                  use=getattr(trainer, "voice_settings", None),
                               memory_mb=getattr(trainer, "planned_memory_mb", None))
    return found


def trainer_for(provider: str, extra: dict[str, str]) -> TrainerSpec:
    known = trainers(extra)
    found = known.get(provider)
    if found is None:
        raise KeyError(f"no trainer for {provider!r}; known: {', '.join(sorted(known)) or 'none'}")
    return found


def load_trainer(target: str) -> Any:
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
