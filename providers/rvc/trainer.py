"""Train an RVC model from the owner's samples; implements ``providers.training.Trainer``.

RVC WebUI's recipe: data prepared as ``train_data`` describes, the VITS-style generator
trained against the v2 multi-period + scale discriminators with adversarial, feature-matching
(x2), mel L1 (x45) and KL (x1) losses, AdamW(lr 1e-4, betas 0.8/0.99, eps 1e-9), learning rate
x0.999875 per epoch, optionally from pretrained bases (``f0G40k.pth``/``f0D40k.pth``: a dict
with "model"). The result is written as RVC's small inference model (``<speaker>.pth``, fp16,
``weight_g``/``weight_v``, 18-item config) plus its FAISS index, both loadable by RVC WebUI and
by this agent. Checkpoints (``latest.pth``, written atomically) allow stop and resume.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from providers.rvc.assets import model_dirs
from providers.settings_base import InputModel, LocalPath
from providers.training import Report, ShouldStop, TrainResult, TrainSpec

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 120.0
STANDARD = [192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3]  # inter..resblock_dilation_sizes
TINY = [16, 16, 32, 2, 2, 3, 0, "1", [3], [[1, 3, 5]]]
UPSAMPLING = {32000: ([10, 8, 2, 2], [20, 16, 4, 4]), 40000: ([10, 10, 2, 2], [16, 16, 4, 4]),
              48000: ([12, 10, 2, 2], [24, 20, 4, 4])}


class RvcTrainParams(InputModel):
    """The seed's RVC training parameters with their ranges, plus where the assets are."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    total_epochs: int = Field(300, ge=100, le=2000, description="Passes over the dataset.")
    save_every_epoch: int = Field(50, ge=10, le=200, description="Checkpoint every this many epochs.")
    batch_size: int = Field(8, ge=1, le=32, description="Chunks per step.")
    sample_rate: Literal["32k", "40k", "48k"] = Field("40k", description="Rate of the model's output.")
    version: Literal["v1", "v2"] = Field("v2", description="v2: 768-d features (layer 12).")
    f0_method: Literal["rmvpe", "harvest", "dio", "crepe"] = Field("rmvpe", description="Pitch of the training audio.")
    learning_rate: float = Field(1e-4, gt=0.0, le=1e-2, description="AdamW learning rate.")
    pretrained_generator: LocalPath = Field("", description="Optional base generator (e.g. f0G40k.pth).")
    pretrained_discriminator: LocalPath = Field("", description="Optional base discriminator (e.g. f0D40k.pth).")
    content_encoder_path: LocalPath = Field("", description="hubert_base.pt or a transformers folder; default: beside the models.")
    rmvpe_path: LocalPath = Field("", description="rmvpe.pt; default: beside the models.")
    size: Literal["standard", "tiny"] = Field("standard", description="tiny: a small network for smoke tests.")
    min_minutes: float = Field(1.0, ge=0.0, le=600.0, description="Refuse datasets with less audio than this.")


class RvcTrainer:
    name = "rvc"
    params_model = RvcTrainParams

    def run(self, spec: TrainSpec, report: Report, should_stop: ShouldStop) -> TrainResult:
        from providers.rvc.train_loop import TrainingRun

        params = RvcTrainParams.model_validate(spec.params)
        random.seed(spec.seed)
        return TrainingRun(spec, params, report, should_stop).run()


def model_config(params: RvcTrainParams, rate: int, spec_channels: int, segment_frames: int) -> list[Any]:
    ups, kernels = UPSAMPLING[rate]
    body = STANDARD if params.size == "standard" else TINY
    initial = 512 if params.size == "standard" else 32
    speakers, gin = (109, 256) if params.size == "standard" else (1, 8)
    return [spec_channels, segment_frames, *body, ups, initial, kernels, speakers, gin, rate]


def find_asset(configured: str, names: tuple[str, ...], spec: TrainSpec) -> Path | None:
    """A configured file, else the first of ``names`` beside the models (the profile's, then the
    household's rvc-models) or the datasets."""
    if configured:
        path = Path(configured).expanduser()
        return path if path.exists() else None
    roots = [spec.output_dir.parent, spec.output_dir, spec.dataset_dir.parent, *model_dirs(spec.ctx)]
    for root in roots:
        for name in names:
            if (root / name).exists():
                return root / name
    return None


def atomic_save(document: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(document, tmp)
    os.replace(tmp, path)


def index_lists(frames: int) -> int:
    """RVC's IVF list count: min(16 sqrt(N), N / 39), at least 1."""
    return max(1, min(int(16 * math.sqrt(frames)), frames // 39))


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
