"""The contract between the agent's job runner and a trainer.

The runner owns scheduling, the job's process, status files, events and the GPU; a trainer only
turns a dataset into a voice. It reports progress through ``report``, checkpoints into
``spec.checkpoint_dir`` often enough that a kill loses little, resumes from the newest
checkpoint found there, and returns soon after ``should_stop()`` turns true (having
checkpointed), so the job can be paused and resumed later to the same result. A dataset it
cannot train on is refused with ``TrainingRefused``: retrying cannot help, so the runner does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from providers.base import ProviderContext


@dataclass(frozen=True)
class Progress:
    stage: str  # e.g. "preparing", "training", "exporting"
    step: int  # epochs or iterations done
    total: int
    best: float | None = None  # best score so far (higher is better), if the trainer has one
    loss: float | None = None
    message: str = ""
    checkpoint: bool = False  # set on the report made right after a checkpoint was written


@dataclass(frozen=True)
class TrainSpec:
    profile: str
    speaker: str  # a plain identifier
    dataset_dir: Path  # WAVs (and metadata.csv with transcripts, for Kokoro)
    output_dir: Path  # where the finished voice goes (the provider's model folder)
    checkpoint_dir: Path  # private to this job; survives restarts
    params: dict[str, Any]  # validated by the trainer's params_model
    ctx: ProviderContext  # the profile's voices and the household's shared files
    device: Literal["cpu", "cuda"] = "cpu"
    seed: int = 0
    memory_mb: int | None = None  # what the job's process may take when it starts (None: not known)


@dataclass(frozen=True)
class TrainResult:
    status: Literal["finished", "stopped"]  # stopped: should_stop() was honoured after a checkpoint
    outputs: list[Path] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


class TrainingRefused(ValueError):
    """The dataset cannot train this voice (too little, unreadable); the message says what to do."""


Report = Callable[[Progress], None]
ShouldStop = Callable[[], bool]


class Trainer(Protocol):
    name: str  # the provider it trains: "kokoro" | "rvc"
    params_model: type[BaseModel]  # validates TrainSpec.params (ranges from the seed)

    def run(self, spec: TrainSpec, report: Report, should_stop: ShouldStop) -> TrainResult: ...
