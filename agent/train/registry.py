"""Which trainer builds which provider's voice; loaded by name, in the job's own process too."""

from __future__ import annotations

import importlib
from typing import Any

# provider -> "module:Class" implementing agent.train.base.Trainer
TRAINERS: dict[str, str] = {
    "kokoro": "providers.kokoro.voicepack_trainer:KokoroVoicepackTrainer",
    "rvc": "providers.rvc.trainer:RvcTrainer",
}


def trainer_names(extra: dict[str, str]) -> list[str]:
    return sorted({**TRAINERS, **extra})


def trainer_target(name: str, extra: dict[str, str]) -> str:
    target = {**TRAINERS, **extra}.get(name)
    if target is None:
        raise KeyError(f"no trainer for {name!r}; known: {', '.join(trainer_names(extra)) or 'none'}")
    return target


def load_trainer(target: str) -> Any:
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
