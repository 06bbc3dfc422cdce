"""A stand-in trainer for the job-runner tests, and honest about being one: it learns nothing.

It does what the runner relies on a real trainer to do: deterministic steps (a hash chain),
checkpoints that carry the whole state, resume from the newest checkpoint, progress reports,
and a prompt, checkpointed stop when asked. A killed-and-resumed run must therefore end with
exactly the value of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from providers.training import Progress, Report, ShouldStop, TrainingRefused, TrainResult, TrainSpec


class CountingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(40, ge=1, le=100000)
    step_seconds: float = Field(0.05, ge=0, le=5)
    save_every: int = Field(5, ge=1, le=1000)
    refuse: str = Field("", description="Refuse the dataset with this reason (as a real trainer would).")
    voice: bool = Field(False, description="Leave a voice the profile can speak with: the bundled Piper voice, copied.")
    memory_mb: int = Field(0, ge=0, le=10**7, description="The memory it says it needs (it takes none of it).")
    ignore_stop: bool = Field(False, description="Go on when asked to stop (a trainer stuck in a step).")


class CountingTrainer:
    name = "counting"
    params_model = CountingParams

    @staticmethod
    def planned_steps(params: CountingParams) -> int:
        return params.steps

    @staticmethod
    def planned_memory_mb(params: CountingParams) -> int:
        return params.memory_mb

    @staticmethod
    def voice_settings(outputs: Sequence[Path], speaker: str, params: CountingParams) -> dict[str, Any]:
        """Its "voice" (with ``voice``): a copy of the bundled Piper voice, as Piper's model."""
        model = next((p for p in outputs if p.suffix == ".onnx"), None)
        return {"tts": {"provider": "piper", "piper": {"model": str(model)}}} if model is not None else {}

    def run(self, spec: TrainSpec, report: Report, should_stop: ShouldStop) -> TrainResult:
        params = CountingParams.model_validate(spec.params)
        if params.refuse:
            raise TrainingRefused(params.refuse)
        checkpoint = spec.checkpoint_dir / "state.json"
        step, value = 0, hashlib.sha256(f"{spec.speaker}:{spec.seed}".encode()).hexdigest()
        if checkpoint.exists():
            saved = json.loads(checkpoint.read_text())
            step, value = saved["step"], saved["value"]
        report(Progress("training", step, params.steps, message="resumed" if step else "started"))
        while step < params.steps:
            time.sleep(params.step_seconds)
            value = hashlib.sha256(f"{value}:{step}".encode()).hexdigest()
            step += 1
            saved_now = step % params.save_every == 0 or step == params.steps
            if saved_now:
                _save(checkpoint, {"step": step, "value": value})
            report(Progress("training", step, params.steps, loss=1.0 / step, checkpoint=saved_now))
            if should_stop() and not params.ignore_stop:
                if not saved_now:
                    _save(checkpoint, {"step": step, "value": value})
                    report(Progress("training", step, params.steps, checkpoint=True))
                return TrainResult("stopped")
        output = spec.output_dir / "result.txt"
        output.write_text(value)
        outputs = [output]
        if params.voice:
            from providers.piper.engine import bundled_voice, config_of

            model = spec.output_dir / f"{spec.speaker}.onnx"
            for source, target in ((bundled_voice(), model), (config_of(bundled_voice()), config_of(model))):
                shutil.copyfile(source, target)
            outputs.append(model)
        # how the runner started this process: CPU jobs must stay out of speech's way
        return TrainResult("finished", outputs, {"steps": float(step), "nice": float(os.nice(0)),
                                                  "omp_threads": float(os.environ.get("OMP_NUM_THREADS", "0")),
                                                  "mkl_threads": float(os.environ.get("MKL_NUM_THREADS", "0"))})


def _save(path: Path, state: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def expected_value(speaker: str, steps: int, seed: int = 0) -> str:
    value = hashlib.sha256(f"{speaker}:{seed}".encode()).hexdigest()
    for step in range(steps):
        value = hashlib.sha256(f"{value}:{step}".encode()).hexdigest()
    return value
