"""The train service's refusals and automatic retraining, in-process (the stand-in trainer is
tests/fake_trainer.py; the record path has a stand-in analyser)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.layout import Layout
from agent.record.analysis import Analysis
from agent.record.requests import RecordRequest
from agent.record.service import RecordService
from agent.settings import AgentSettings
from agent.cli.train import cli_hint
from agent.train.requests import TrainRequest
from agent.train.service import TrainService
from tests.agent.gpu.test_arbiter import FakeGpus
from tests.agent.record.test_service import FakeAnalyser, scored


@dataclass
class Rig:
    home: Path
    layout: Layout
    service: TrainService
    records: RecordService
    analyser: FakeAnalyser

    def voice_json(self, document: dict[str, Any]) -> None:
        path = self.layout.profile_config("default")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        self.service._configs.reload("default")

    def keep(self, count: int) -> None:
        for _ in range(count):
            self.analyser.results.append(Analysis(2.0, [scored(80.0)], []))
            self.records.submit("default", RecordRequest(audio=b"RIFF")).result(10)


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    settings = AgentSettings(home=tmp_path, extra_trainers={"counting": "tests.fake_trainer:CountingTrainer"})
    layout = Layout(tmp_path)
    events, state = EventBus(), StateBoard()
    configs = ConfigStore(layout, events)
    analyser = FakeAnalyser()
    records = RecordService(layout, configs, events, state, 4, analyser)
    arbiter = GpuArbiter(FakeGpus(0, 0, available=False), HogPauser([], tmp_path / "paused.json"), lambda n, d: None)
    service = TrainService(settings, layout, configs, records, events, state, arbiter)
    yield Rig(tmp_path, layout, service, records, analyser)
    service.stop()
    records.stop()


def refusal(rig: Rig, provider: str, **fields: Any) -> ServiceError:
    with pytest.raises(ServiceError) as refused:
        rig.service.submit("default", TrainRequest(provider=provider, speaker="owner", **fields))
    return refused.value


def fill(folder: Path, count: int, seconds: float = 2.0, transcripts: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(count):
        soundfile.write(folder / f"s{n}.wav", np.zeros(int(16000 * seconds), np.float32), 16000)
        rows.append([f"s{n}.wav", f"Sentence number {n}."])
    if transcripts:
        with (folder / "metadata.csv").open("w", newline="") as handle:
            csv.writer(handle, delimiter="|").writerows(rows)


def test_a_folder_too_small_for_the_trainer_is_refused_before_a_job_exists(rig: Rig) -> None:
    """Three WAVs in kokoro-datasets/owner once became a job that died four times."""
    fill(rig.layout.voice_folder("default", "kokoro-datasets", "owner"), 3)
    refused = refusal(rig, "kokoro")
    assert refused.code == "not_ready" and "3 WAV files, need at least 10" in str(refused)
    assert rig.service.jobs.list() == []
    ok = rig.service.submit("default", TrainRequest(provider="kokoro", speaker="owner", when="idle",
                                                    params={"minSamples": 3, "minMinutes": 0}))
    assert ok["job"]["state"] == "queued"  # the trainer's own knobs decide for a folder given as it is


def test_without_a_folder_the_samples_must_be_ready(rig: Rig) -> None:
    rig.keep(2)
    refused = refusal(rig, "rvc")
    assert refused.code == "not_ready" and "48 more samples (have 2, need 50)" in str(refused)
    assert "voice-agent" not in str(refused)  # each door says how to get more in its own words
    assert refused.data and refused.data["missing"][0] == "48 more samples (have 2, need 50)"
    assert refused.data and (refused.data["provider"], refused.data["speaker"]) == ("rvc", "owner")
    assert "samples export rvc --speaker owner" in cli_hint(refused.code, refused.data)
    fill(rig.layout.voice_folder("default", "rvc-reference", "owner"), 3, seconds=0.5, transcripts=False)
    assert "at least 1 are needed" in str(refusal(rig, "rvc"))


def test_unknown_trainers_bad_params_and_duplicates(rig: Rig) -> None:
    assert refusal(rig, "piper").code == "unknown_trainer"
    assert refusal(rig, "counting", params={"steps": 0}).code == "invalid_params"
    rig.service.submit("default", TrainRequest(provider="counting", speaker="owner", when="idle"))
    assert refusal(rig, "counting").code == "duplicate"


def test_automatic_retraining_backs_off_after_a_failure(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kept sample makes the service check (on its own thread); a failed job once made it
    queue a new one on every sample after it, forever."""
    import agent.train.service as service_module

    monkeypatch.setattr(service_module, "RETRY_FIRST", 0.5)  # an hour, in the agent
    rig.voice_json({"train": {"autoRetrain": {"enabled": True, "provider": "counting", "speaker": "owner", "newSamples": 2}}})

    def jobs() -> list[Any]:
        rig.service._executor.submit(lambda: None).result(10)  # its checks so far are done
        return sorted(rig.service.jobs.list(), key=lambda j: j.created)

    rig.keep(1)
    assert jobs() == []  # one new sample of two
    rig.keep(1)
    [job] = jobs()
    assert (job.provider, job.speaker, job.run_when, job.state) == ("counting", "owner", "idle", "queued")
    rig.keep(2)
    assert len(jobs()) == 1  # queued already: not twice
    rig.service.jobs.update(job, state="failed", finished=time.time())
    rig.keep(2)  # enough new samples at once...
    assert len(jobs()) == 1  # ...but a job just failed: wait
    time.sleep(0.55)
    assert len(rig.service.check_auto_retrain()) == 1  # the scheduler's check, after the wait
    second = jobs()[-1]
    rig.service.jobs.update(second, state="failed", finished=time.time())
    time.sleep(0.55)
    assert rig.service.check_auto_retrain() == []  # no new samples since that failure
    rig.keep(2)
    assert len(jobs()) == 2  # two failures in a row: it waits twice as long (1 s)
    time.sleep(0.5)
    assert len(rig.service.check_auto_retrain()) == 1


def test_at_most_eight_jobs_wait_in_the_home(rig: Rig) -> None:
    """A flood of `train` requests for new speakers once left 76 jobs queued, each hours of work."""
    def train(speaker: str, profile: str = "default") -> dict[str, Any]:
        return rig.service.submit(profile, TrainRequest(provider="counting", speaker=speaker, when="idle"))

    jobs = [train(f"s{n}")["job"] for n in range(7)]
    (rig.home / "profiles" / "kitchen").mkdir()
    jobs.append(train("s7", "kitchen")["job"])  # the eighth, of another profile: the home's queue is one
    with pytest.raises(ServiceError) as refused:
        train("s8")
    assert (refused.value.code, str(refused.value)) == (
        "busy", "8 training jobs are already queued (at most 8); cancel one or wait for them")
    assert len(rig.service.jobs.list(states=("queued",))) == 8
    running = rig.service.jobs.get(jobs[0]["id"])
    assert running is not None
    rig.service.jobs.update(running, state="running")  # one that runs no longer waits
    assert train("s8")["job"]["state"] == "queued"
    with pytest.raises(ServiceError):
        train("s9")
    rig.service.runner.cancel(jobs[1]["id"])  # nor does a cancelled one
    assert train("s9")["job"]["state"] == "queued"


def test_a_profile_whose_samples_cannot_be_opened_does_not_stop_the_others_retraining(rig: Rig) -> None:
    rig.keep(1)
    auto = {"train": {"autoRetrain": {"enabled": True, "provider": "counting", "speaker": "owner", "newSamples": 1}}}
    rig.voice_json(auto)
    attic = rig.layout.profile_config("attic")  # checked first, and its record path is down
    attic.parent.mkdir(parents=True)
    attic.write_text(json.dumps(auto))
    rig.service._configs.reload("attic")
    rig.layout.samples_db("attic").mkdir(parents=True)
    [job] = rig.service.check_auto_retrain()
    assert (job.profile, job.provider) == ("default", "counting")


def test_a_started_service_stops_twice_without_error(rig: Rig) -> None:
    """A failed start stops the agent, and the agent's stop may come again."""
    rig.service.start()
    rig.service.stop()
    rig.service.stop()  # and once more in the fixture's teardown


class Placing:
    """RemoteTraining as the service asks it: where a job goes (the placement itself is tested in
    tests/agent/nodes/test_placement.py), and a start for the runner."""

    def __init__(self, place: Any) -> None:
        self.where = place
        self.asked: list[tuple[str, str]] = []

    def place(self, run_on: str, provider: str) -> Any:
        self.asked.append((run_on, provider))
        return self.where

    def starter(self, where: Any) -> Any:
        return ("start", where)


def test_run_on_train_sends_a_job_to_a_worker_and_a_node_that_cannot_take_it_fails_it(rig: Rig) -> None:
    from agent.nodes.placement import ANY_WORKER, NO_WORKER, Place

    rig.service.remote = Placing(Place(ANY_WORKER))  # type: ignore[assignment]
    counting = rig.service.jobs.create("default", "counting", "owner", {}, "now")
    assert rig.service._prepare(counting).remote is None  # runOn.train is local by default: nothing asked
    rig.voice_json({"runOn": {"train": "auto"}})
    assert rig.service._prepare(counting).remote == ("start", Place(ANY_WORKER))
    fill(rig.layout.voice_folder("default", "rvc-datasets", "owner"), 3)
    rvc = rig.service.jobs.create("default", "rvc", "owner", {}, "now")
    assert rig.service._prepare(rvc).remote == ("start", Place(ANY_WORKER))  # its large files come by hash
    assert rig.service.remote.asked == [("auto", "counting"), ("auto", "rvc")]  # type: ignore[union-attr]
    rig.service.remote = Placing(Place(None, NO_WORKER, "node 'desk' is offline"))  # type: ignore[assignment]
    with pytest.raises(ServiceError) as refused:
        rig.service._prepare(counting)
    assert refused.value.code == NO_WORKER and "offline" in str(refused.value)
    rig.service.remote = Placing(Place(None))  # type: ignore[assignment]
    assert rig.service._prepare(counting).remote is None  # auto with no worker online: here


def test_a_worker_busy_with_another_nodes_job_starts_its_own_after_it(rig: Rig) -> None:
    job = rig.service.jobs.create("default", "counting", "owner", {}, "now")
    assert rig.service._admit(job) is None
    rig.service.others_running = lambda: "20260101000000-abcdef.1a2b3c"
    verdict = rig.service._admit(job)
    assert verdict is not None and verdict[0] == "wait" and "another node's training job" in verdict[1]
