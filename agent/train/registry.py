"""Which trainer builds which provider's voice: the providers' specs, plus trainers named in the
settings (plugins, tests). Trainer classes are imported in the job's own process."""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from providers import registry
from providers.spec import TrainerSpec


def trainers(extra: dict[str, str]) -> dict[str, TrainerSpec]:
    """provider -> its trainer; an extra trainer's parameters come from its class, loaded here,
    and so do its optional ``planned_steps(params)``, ``voice_settings(outputs, speaker, params)`` and
    ``planned_memory_mb(params)``. One under a provider's own name replaces that provider's trainer
    class and parameters; the rest of the provider's trainer (where its voice goes, its dataset
    check, whether it may run on a worker) stays, unless the class has its own hook."""
    found = {spec.name: spec.trainer for spec in registry.SPECS if spec.trainer is not None}
    for name, target in extra.items():
        trainer = load_trainer(target)
        params: type[BaseModel] = trainer.params_model
        base = found.get(name)
        if base is not None:
            found[name] = replace(base, target=target, params=params, steps=getattr(trainer, "planned_steps", base.steps),
                                  use=getattr(trainer, "voice_settings", base.use),
                                  memory_mb=getattr(trainer, "planned_memory_mb", base.memory_mb))
            continue
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
