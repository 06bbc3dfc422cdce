"""Training jobs of one node run by another, through the real agents and one Mosquitto: node A
(home-server) keeps the profile, its dataset and voice.json (``runOn.train``); workers B
(gpu-desktop) and C (attic) have none of it and fetch the dataset by hash. The job runs on B with
the test's stand-in trainer (tests/fake_trainer.py: deterministic steps, so a resumed run must end
with exactly an uninterrupted run's value); its progress reaches A's events and state; the result
lands in A's voices. B killed (-9) mid-training: the job resumes on C from B's last checkpoint and
ends with the same value, nothing half-written left on A. A node that cannot take a job: no_worker."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, write_json
from tests.e2e.household import Household, running
from tests.fake_trainer import expected_value
from tests.speech import OWNER_RATE, owner, wav

pytestmark = pytest.mark.slow

ENV = {"VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"counting": "tests.fake_trainer:CountingTrainer"}),
       "PYTHONPATH": str(REPO)}


class TrainHousehold(Household):
    """A's profile trains where ``runOn.train`` says (``auto``: on any worker), with the stand-in trainer."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, env=ENV)

    def furnish(self, home: Path) -> None:
        write_json(home / "profiles" / "default" / "etc" / "voice.json", {"runOn": {"train": "auto"}})

    def dataset(self, speaker: str) -> Path:
        """A dataset the stand-in trainer does not read, and the worker must fetch all the same."""
        folder = self.profile / "out" / "voices" / "counting-datasets" / speaker
        folder.mkdir(parents=True)
        (folder / "s0.wav").write_bytes(wav(owner("Turn the heating down."), OWNER_RATE))
        (folder / "metadata.csv").write_text("s0.wav|Turn the heating down.\n")
        return folder

    def train(self, speaker: str, steps: int, step_seconds: float = 0.05, profile: str = "default") -> str:
        response = self.probe.request(profile, "train", {
            "provider": "counting", "speaker": speaker, "when": "now",
            "params": {"steps": steps, "step_seconds": step_seconds, "save_every": 10}})
        assert response["status"] == "ok", response
        return str(response["data"]["job"]["id"])

    def result(self, speaker: str) -> str:
        return (self.profile / "out" / "voices" / "counting-models" / speaker / "result.txt").read_text()


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainHousehold]:
    with running(TrainHousehold(tmp_path_factory.mktemp("remote-train"))) as found:
        yield found


def half_written(folder: Path) -> list[Path]:
    """What a write cut short would leave: hidden temp files and folders, .part and .tmp files."""
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix in (".part", ".tmp")]


def test_a_job_runs_on_the_worker_and_its_result_lands_here(household: TrainHousehold) -> None:
    household.dataset("joe")
    job = household.train("joe", steps=40)
    assert household.event("training.started", job)["device"] == "remote"
    progress = household.event("training.progress", job, check=lambda d: d.get("node") == "gpu-desktop")
    assert progress["total"] == 40 and progress["stage"] == "training"
    assert household.event("training.checkpoint", job)["step"] % 10 == 0
    finished = household.event("training.finished", job)
    assert finished["metrics"]["steps"] == 40
    assert [Path(p).name for p in finished["outputs"]] == ["result.txt"]
    assert Path(finished["outputs"][0]).parent == household.profile / "out" / "voices" / "counting-models" / "joe"
    assert household.result("joe") == expected_value("joe", 40)  # the worker's result, whole

    def state_of_job(topic: str, payload: bytes) -> bool:
        training = (json.loads(payload).get("training") or {}) if topic == "voice/default/state" else {}
        return bool(training.get("job") == job and training.get("done"))

    state = json.loads(household.probe.wait_for(state_of_job, 10)[1])["training"]
    assert (state["state"], state["node"], state["step"]) == ("finished", "gpu-desktop", 40)
    desk_log = household.desk.log.read_text()
    assert "training job" in desk_log and "taken (counting/joe, 2 files)" in desk_log
    blobs = household.desk.home / "out" / "blobs"
    assert len([p for p in blobs.iterdir() if not p.name.endswith(".part")]) == 2  # the WAV and metadata.csv
    assert not (household.desk.home / "out" / "work" / "train").exists() or \
        [p.name for p in (household.desk.home / "out" / "work" / "train").iterdir()] == ["logs"]
    log = (household.home.home / "logs" / "run" / "counting-training-joe.log").read_text()
    assert "taken by worker gpu-desktop" in log and "trained files kept: result.txt" in log
    assert half_written(household.profile / "out") == []


def test_a_killed_worker_resumes_on_another_from_its_last_checkpoint(household: TrainHousehold) -> None:
    attic = household.join(household.root / "c", "attic", ("attic",), **ENV)
    try:
        household.dataset("kill")
        job = household.train("kill", steps=150, step_seconds=0.1)
        checkpoint = household.event("training.checkpoint", job, timeout=90, check=lambda d: d["step"] >= 20)
        taker = household.event("training.progress", job, check=lambda d: d.get("node") in ("gpu-desktop", "attic"))
        first, other = (household.desk, attic) if taker["node"] == "gpu-desktop" else (attic, household.desk)
        first.stop(signal.SIGKILL)
        paused = household.event("training.paused", job)
        assert paused["code"] == "worker_lost" and "checkpoint" in paused["reason"], paused
        resumed = household.event("training.resumed", job)
        assert resumed["device"] == "remote"
        again = household.event("training.progress", job, timeout=60, check=lambda d: d.get("node") not in (None, taker["node"]))
        assert again["node"] != taker["node"] and again["step"] >= checkpoint["step"]
        held = household.profile / "out" / "training" / job  # what the home holds: one whole checkpoint, named
        assert {p.name.split("-")[0] for p in held.iterdir() if not p.name.startswith(".")} == {"received", "remote.json"}
        household.event("training.finished", job, timeout=120)
        assert household.result("kill") == expected_value("kill", 150)  # as if it had never stopped
        assert half_written(household.profile / "out") == [] and not held.exists()  # a finished job's checkpoints go
        assert "resuming from step" in other.log.read_text()
    finally:
        attic.stop()
        if household.desk.process is not None and household.desk.process.poll() is not None:
            household.restart(household.desk)


def test_a_job_for_a_node_that_cannot_take_it_says_no_worker(household: TrainHousehold) -> None:
    household.configure({"default": {"runOn": {"train": "nowhere"}}})
    household.dataset("none")
    try:
        job = household.train("none", steps=5)
        failed = household.event("training.failed", job, timeout=30)
        assert failed["code"] == "no_worker" and "nowhere" in failed["error"], failed
    finally:
        household.configure({"default": {"runOn": {"train": "auto"}}})  # the next test's jobs go out
