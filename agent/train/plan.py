"""What a training job would start from: the profile's samples summed up, each trainer's
readiness in plain words, and the estimate (agent/train/estimate.py). No I/O: the service hands
in what it read, so the sums are checked in-process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.train.estimate import Estimate, Timing, estimate
from providers.spec import Readiness, RoughPace, SampleView, TrainerSpec


def dataset_summary(samples: Sequence[SampleView]) -> dict[str, Any]:
    """Kept samples and minutes, and how many of them have a transcript (Kokoro learns only from those)."""
    transcribed = [s for s in samples if s.transcript]
    return {"samples": len(samples), "minutes": round(sum(s.duration for s in samples) / 60, 2),
            "with_transcripts": len(transcribed),
            "minutes_with_transcripts": round(sum(s.duration for s in transcribed) / 60, 2)}


def trainer_readiness(found: Mapping[str, TrainerSpec], rules: Mapping[str, Readiness],
                      folders: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Each trainer: ready or what is missing. ``rules`` holds the registry's readiness of the
    providers that learn from samples; ``folders`` the WAVs already in each one's dataset folder
    (a folder that has some is trained on as it is, and the trainer checks it itself)."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(found):
        wavs = folders.get(name, 0)
        rule = rules.get(name)
        if wavs:
            out[name] = {"ready": True, "missing": [], "dataset_wavs": wavs, "progress": 1.0,
                         "note": f"trains on the {wavs} WAVs already in its dataset folder"}
        elif rule is None:
            out[name] = {"ready": True, "missing": [], "dataset_wavs": 0, "progress": 1.0,
                         "note": "this trainer checks its dataset itself when it starts"}
        else:
            out[name] = {"ready": rule.ready, "missing": list(rule.missing), "dataset_wavs": 0,
                         "progress": rule.progress, "note": ""}
    return out


def rough_timing(pace: RoughPace | None) -> Timing | None:
    if pace is None:
        return None
    return Timing(pace.device, pace.setup_seconds, pace.step_seconds, 0, "", pace.where)


def job_estimate(trainer: TrainerSpec, params: Any, measured: Any) -> Estimate:
    """The job's estimate: its steps from the trainer, the pace from the last job measured here
    (``measured``: the stored timing, any shape), else the trainer's rough one."""
    steps = int(trainer.steps(params)) if trainer.steps is not None else None
    return estimate(steps, Timing.from_dict(measured), rough_timing(trainer.rough))
