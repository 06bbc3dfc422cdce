"""The real Kokoro voicepack trainer on a worker: node A (home-server) keeps the profile and its
dataset (two transcribed sentences) and has no Kokoro model; worker B (gpu-desktop) has the
models, fetches the dataset by hash and trains a few epochs; the voicepack lands in A's voices
(each file checked against its hash on arrival) and is the profile's voice to choose."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_home, write_json
from tests.e2e.household import Household, running
from tests.e2e.kokoro_job import NO_MEMORY_CHECK, start_voicepack_job, voicepack_dataset
from tests.providers.kokoro.models import install_models, prepared_models

pytestmark = pytest.mark.slow


class KokoroHousehold(Household):
    """A keeps the dataset and trains on B, which alone has the Kokoro models."""

    def __init__(self, root: Path, models: Path) -> None:
        install_models(models, make_home(root / "b", ("office",)))
        super().__init__(root, desk_env=NO_MEMORY_CHECK)

    def furnish(self, home: Path) -> None:
        write_json(home / "profiles" / "default" / "etc" / "voice.json", {"runOn": {"train": "gpu-desktop"}})
        self.dataset = voicepack_dataset(home)


def test_a_kokoro_voicepack_trained_on_the_worker_lands_in_the_homes_voices(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with running(KokoroHousehold(tmp_path, prepared_models(tmp_path_factory))) as household:
        home, desk, probe, dataset = household.home.home, household.desk, household.probe, household.dataset
        job = start_voicepack_job(probe)
        progress = household.event("training.progress", job, timeout=120)
        assert progress["node"] == "gpu-desktop" and progress["total"] == 2
        finished = household.event("training.finished", job, timeout=240)
        packs = home / "profiles" / "default" / "out" / "voices" / "kokoro-voicepacks" / "joe"
        outputs = [Path(str(p)) for p in finished["outputs"]]
        assert sorted(p.name for p in outputs) == ["joe.npy", "joe.pt"] and all(p.parent == packs for p in outputs)
        pack = np.load(packs / "joe.npy")
        assert pack.dtype == np.float32 and pack.shape[-1] == 256 and np.isfinite(pack).all()
        log = (home / "logs" / "run" / "kokoro-training-joe.log").read_text()
        assert "taken by worker gpu-desktop" in log and "trained files kept: joe.npy, joe.pt" in log
        assert not (home / "out" / "models" / "kokoro").exists()  # trained where the models are, not here
        # the dataset went by hash: B's cache holds exactly A's files
        blobs = sorted(p.name for p in (desk.home / "out" / "blobs").iterdir())
        assert blobs == sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in dataset.iterdir())
        voice = probe.request("default", "train.status", {"job": job})["data"]["job"]["voice"]
        assert voice and voice["tts"]["provider"] == "kokoro", voice
