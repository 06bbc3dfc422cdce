"""The job runner in-process with a real job process, where the GPU is a test double (NVML
cannot run here): speech pauses a GPU job at a checkpoint and it resumes once it is quiet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.layout import Layout
from agent.train.jobs import JobStore
from agent.train.runner import JobRunner, Launch
from agent.train.schedule import IdlePolicy, parse_window
from tests.agent.gpu.test_arbiter import FakeGpus
from tests.conftest import REPO
from tests.fake_trainer import expected_value


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        self.events.append((name, data))

    def wait(self, name: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event, data in self.events:
                if event == name:
                    return data
            time.sleep(0.05)
        raise AssertionError(f"no {name}; saw {[e for e, _ in self.events]}")


def test_speech_pauses_a_gpu_job_which_resumes_when_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    recorder = Recorder()
    events, state = EventBus(), StateBoard()
    events.listen(recorder)
    clock = [1000.0]
    policy = IdlePolicy(parse_window("00:00-23:59"), quiet_seconds=60, monotonic=lambda: clock[0])
    arbiter = GpuArbiter(FakeGpus(24000, 1000), HogPauser([], tmp_path / "paused.json"), lambda n, d: None)
    profile_dir = tmp_path / "profiles" / "default"

    def prepare(job: Any) -> Launch:
        return Launch("tests.fake_trainer:CountingTrainer", tmp_path / "data", profile_dir / "out" / "model",
                      profile_dir / "out" / "training" / job.id, need_vram_mb=4000, pause_hogs=False)

    jobs = JobStore(tmp_path / "jobs.db")
    runner = JobRunner(jobs, Layout(tmp_path), events, state, policy, arbiter, prepare)
    job = jobs.create("default", "counting", "gpu", {"steps": 60, "step_seconds": 0.05, "save_every": 5}, "now")
    runner.enqueue(job)
    runner.tick()
    assert recorder.wait("training.started")["device"] == "cuda"
    recorder.wait("training.checkpoint")

    policy.touch()  # the household speaks...
    runner.on_speech()
    paused = recorder.wait("training.paused")
    assert "speech" in paused["reason"]
    assert jobs.get(job.id).state == "paused"  # type: ignore[union-attr]
    runner.tick()
    assert runner.running_job is None, "resumed while it was not quiet yet"

    clock[0] += 61  # ...then it is quiet for a minute
    runner.tick()
    recorder.wait("training.resumed")
    recorder.wait("training.finished", timeout=60)
    assert (profile_dir / "out" / "model" / "result.txt").read_text() == expected_value("gpu", 60)
    runner.stop()
    jobs.close()
