"""The real RVC trainer with a shorter run allowed: the seed's ranges start at 100 epochs, which a
tiny network on a 2-core machine takes minutes for. Everything else (data preparation, the
training steps, checkpoints, export of the model and its FAISS index) is ``providers.rvc``'s own,
so an end-to-end test of where training runs trains a real, small RVC model in seconds."""

from __future__ import annotations

import random

from pydantic import Field

from providers.rvc.trainer import RvcTrainer, RvcTrainParams
from providers.training import Report, ShouldStop, TrainResult, TrainSpec


class QuickRvcParams(RvcTrainParams):
    total_epochs: int = Field(2, ge=1, le=2000, description="Passes over the dataset.")
    save_every_epoch: int = Field(1, ge=1, le=200, description="Checkpoint every this many epochs.")


class QuickRvcTrainer(RvcTrainer):
    params_model = QuickRvcParams

    def run(self, spec: TrainSpec, report: Report, should_stop: ShouldStop) -> TrainResult:
        from providers.rvc.train_loop import TrainingRun

        params = QuickRvcParams.model_validate(spec.params)
        random.seed(spec.seed)
        return TrainingRun(spec, params, report, should_stop).run()
