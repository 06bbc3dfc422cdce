"""The RVC trainer through the Trainer contract: prepares Piper-voiced samples, stops when asked
(after a checkpoint), resumes from it, and exports a model and index that load here."""

from __future__ import annotations

import dataclasses
import wave
from pathlib import Path

import numpy as np
import pytest

from providers.rvc.modelfile import read_model, shape_problems
from providers.rvc.runtime import load_voice
from providers.rvc.train_loop import TrainingRun
from providers.rvc.trainer import RvcTrainer, RvcTrainParams
from providers.training import Progress, TrainSpec
from tests.contexts import loose_context
from tests.providers.rvc.fakes import write_fairseq_hubert
from tests.speech import owner

pytestmark = pytest.mark.slow

LINES = ["The kettle has boiled, so the tea is ready.", "Please water the tomatoes before it gets dark.",
         "I will be home a little later than usual tonight."]


def _dataset(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i, text in enumerate(LINES):
        with wave.open(str(folder / f"{i:03d}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(22050)
            out.writeframes((owner(text) * 32767).astype(np.int16).tobytes())
    return folder


def assert_same_training_state(resumed: Path, straight: Path) -> None:
    import torch

    a, b = (torch.load(p, map_location="cpu", weights_only=False) for p in (resumed, straight))
    assert a["epoch"] == b["epoch"] == 3
    for part in ("generator", "discriminator"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=1e-4, atol=1e-6, msg=f"{part} {key}")
    for part in ("opt_g", "opt_d"):
        assert a[part]["param_groups"] == b[part]["param_groups"]
        for index, state in a[part]["state"].items():
            for name in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(state[name], b[part]["state"][index][name], rtol=1e-4, atol=1e-8,
                                           msg=f"{part} {index} {name}")


def test_params_keep_the_seeds_ranges() -> None:
    assert RvcTrainParams.model_validate({"totalEpochs": 100, "saveEveryEpoch": 10, "batchSize": 32}).batch_size == 32
    for bad in ({"totalEpochs": 99}, {"saveEveryEpoch": 201}, {"batchSize": 0}, {"sampleRate": "44k"}):
        with pytest.raises(ValueError):
            RvcTrainParams.model_validate(bad)


def test_trains_stops_resumes_and_exports_a_loadable_model(tmp_path: Path) -> None:
    models = tmp_path / "voices" / "rvc-models"
    models.mkdir(parents=True)
    write_fairseq_hubert(models / "hubert_base.pt")
    spec = TrainSpec(
        profile="default", speaker="owner", dataset_dir=_dataset(tmp_path / "dataset"), output_dir=models / "owner",
        checkpoint_dir=tmp_path / "checkpoints", seed=1, ctx=loose_context(tmp_path, (tmp_path / "voices",)),
        params={"totalEpochs": 100, "saveEveryEpoch": 50, "batchSize": 4, "f0Method": "dio", "size": "tiny", "minMinutes": 0},
    )
    seen: list[Progress] = []
    stopped = RvcTrainer().run(spec, seen.append, lambda: any(p.stage == "training" and p.step >= 2 for p in seen))

    assert stopped.status == "stopped" and stopped.metrics["epoch"] == 2
    assert (spec.checkpoint_dir / "latest.pth").is_file() and not (models / "owner").exists()
    assert seen[0].stage == "preparing" and any(p.message == "checkpoint saved" for p in seen)
    assert all(np.isfinite(v) for v in stopped.metrics.values())

    resumed: list[Progress] = []
    again = RvcTrainer().run(spec, resumed.append, lambda: any(p.stage == "training" and p.step >= 3 for p in resumed))
    assert again.status == "stopped" and again.metrics["epoch"] == 3
    assert not any(p.stage == "preparing" for p in resumed)  # the prepared data was kept with the checkpoint
    assert [p.step for p in resumed if p.stage == "training"][0] == 3  # went on from epoch 2

    # resuming means ending where an uninterrupted run ends: same weights, same optimizer moments
    straight = dataclasses.replace(spec, checkpoint_dir=tmp_path / "straight")
    reports: list[Progress] = []
    RvcTrainer().run(straight, reports.append, lambda: any(p.stage == "training" and p.step >= 3 for p in reports))
    assert_same_training_state(spec.checkpoint_dir / "latest.pth", straight.checkpoint_dir / "latest.pth")

    # finishing runs the same export; here from the newest checkpoint, to keep the test short
    model_path, index_path = TrainingRun(spec, RvcTrainParams.model_validate(spec.params), resumed.append,
                                         lambda: False).export_checkpoint()
    model = read_model(model_path)
    assert model_path == models / "owner" / "owner.pth" and index_path == models / "owner" / "owner.index"
    assert (model.version, model.sample_rate, model.with_pitch, model.dtype, model.info) == ("v2", 40000, True, "float16", "3epoch")
    assert model.weight_norm_spelling == "weight_g/weight_v" and shape_problems(model) == []
    voice = load_voice(model_path, index_path, "cpu")
    assert voice.index is not None and voice.index.dim == 768
