"""The job runner in-process with real job processes (the stand-in trainer of tests/fake_trainer.py),
where the GPU is a test double (NVML cannot run here): progress, status files and the log, crashes
resumed from the checkpoint to the same result, refusals not retried, cancelling, the idle window,
speech preempting a GPU job, a stop and the next runner resuming, one runner per home."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.layout import Layout
from agent.train.jobs import Job, JobStore
from agent.train import runner as runner_module
from agent.train.runner import PROGRESS_INTERVAL, JobRunner, Launch
from agent.train.schedule import IdlePolicy, parse_window
from tests.agent.gpu.test_arbiter import FakeGpus
from tests.conftest import REPO
from tests.fake_trainer import expected_value


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.states: list[dict[str, Any]] = []
        self.slow: dict[str, float] = {}  # event name: seconds its publishing takes (a busy broker)

    def __call__(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        time.sleep(self.slow.get(name, 0.0))
        self.events.append((name, data))

    def state(self, key: str, document: dict[str, Any]) -> None:
        if key == "default":
            self.states.append(document)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]

    def wait(self, name: str, timeout: float = 30, count: int = 1) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.named(name)
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.02)
        raise AssertionError(f"no {name} #{count}; saw {[e for e, _ in self.events]}")


@dataclass
class Rig:
    home: Path
    layout: Layout
    jobs: JobStore
    runner: JobRunner
    recorder: Recorder
    clock: list[float]
    gpus: FakeGpus
    policy: IdlePolicy
    prepared: list[str]

    def job(self, steps: int = 12, step_seconds: float = 0.01, speaker: str = "owner", when: str = "now",
            **params: Any) -> Job:
        job = self.jobs.create("default", "counting", speaker, {"steps": steps, "step_seconds": step_seconds,
                                                                "save_every": 5, **params}, when)
        self.runner.enqueue(job)
        return job

    def state(self, job: Job) -> str:
        found = self.jobs.get(job.id)
        assert found is not None
        return found.state

    def wait_state(self, job: Job, state: str, timeout: float = 30) -> Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.jobs.get(job.id)
            if found is not None and found.state == state and self.runner.running_job is None:
                return found
            time.sleep(0.02)
        raise AssertionError(f"job never {state}: {self.jobs.get(job.id)}")

    def another_runner(self, max_restarts: int = 3, **keep: int) -> JobRunner:
        return make_runner(self.jobs, self.layout, self.recorder, self.policy, self.gpus, self.prepared, max_restarts,
                           **keep)


def make_runner(jobs: JobStore, layout: Layout, recorder: Recorder, policy: IdlePolicy, gpus: FakeGpus,
                prepared: list[str], max_restarts: int = 3, keep_failed: int = 3,
                log_max_bytes: int = 10 * 1024 * 1024) -> JobRunner:
    events, state = EventBus(), StateBoard()
    events.listen(recorder)
    state.watch(recorder.state)
    arbiter = GpuArbiter(gpus, HogPauser([], layout.home / "paused.json"), lambda n, d: None)

    def prepare(job: Job) -> Launch:
        prepared.append(job.id)
        if job.speaker == "unpreparable":
            raise ValueError("the dataset folder is not readable")
        return Launch("tests.fake_trainer:CountingTrainer", layout.home / "data",
                      layout.voice_folder(job.profile, "counting-models", job.speaker),
                      layout.training_dir(job.profile, job.id), need_vram_mb=4000, pause_hogs=False,
                      keep_failed=keep_failed, log_max_bytes=log_max_bytes)

    return JobRunner(jobs, layout, events, state, policy, arbiter, prepare, max_restarts=max_restarts)


@pytest.fixture()
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    layout = Layout(tmp_path)
    recorder = Recorder()
    clock = [1000.0]
    policy = IdlePolicy(parse_window("00:00-23:59"), quiet_seconds=60, monotonic=lambda: clock[0])
    gpus = FakeGpus(24000, 1000, available=False)
    jobs = JobStore(layout.jobs_db)
    prepared: list[str] = []
    runner = make_runner(jobs, layout, recorder, policy, gpus, prepared)
    yield Rig(tmp_path, layout, jobs, runner, recorder, clock, gpus, policy, prepared)
    runner.stop()
    jobs.close()


def result_of(rig: Rig, speaker: str = "owner") -> str:
    return (rig.layout.voice_folder("default", "counting-models", speaker) / "result.txt").read_text()


def test_a_job_runs_to_its_end_and_says_so_everywhere(rig: Rig) -> None:
    job = rig.job(steps=12)
    rig.runner.tick()
    started = rig.recorder.wait("training.started")
    assert started["device"] == "cpu" and started["pid"] > 0 and started["job"] == job.id
    finished = rig.recorder.wait("training.finished")
    done = rig.wait_state(job, "finished")

    assert result_of(rig) == expected_value("owner", 12)
    assert finished["outputs"] == [str(rig.layout.voice_folder("default", "counting-models", "owner") / "result.txt")]
    assert finished["metrics"]["steps"] == 12.0
    # a CPU job must not slow speech down: lowest priority, one thread
    metrics = finished["metrics"]
    assert (metrics["nice"], metrics["omp_threads"], metrics["mkl_threads"]) == (19.0, 1.0, 1.0)
    assert done.outputs == finished["outputs"] and done.error is None and done.finished and done.started
    assert done.progress["step"] == 12 and done.progress["eta_seconds"] == 0
    files = rig.layout.status_files("counting", "owner")
    status = json.loads(files.json_path.read_text())
    assert (status["state"], status["step"], status["total"], status["job"]) == ("finished", 12, 12, job.id)
    log = files.log_path.read_text()
    assert "attempt 1 on cpu" in log and "training 12/12" in log
    assert [(e["step"], e["total"]) for e in rig.recorder.named("training.checkpoint")][:2] == [(5, 12), (10, 12)]
    last = rig.recorder.states[-1]["training"]
    assert (last["state"], last["done"], last["job"]) == ("finished", True, job.id)
    assert rig.recorder.named("training.queued") == [{"job": job.id, "provider": "counting", "speaker": "owner",
                                                      "when": "now"}]


def test_progress_reaches_mqtt_at_a_bounded_rate(rig: Rig) -> None:
    rig.job(steps=150, step_seconds=0.02)  # three seconds of 150 reports (more on a loaded machine)
    began = time.monotonic()
    rig.runner.tick()
    rig.recorder.wait("training.finished")
    took = time.monotonic() - began
    progress = rig.recorder.named("training.progress")
    # one event per PROGRESS_INTERVAL, and the first and the last: whatever the job took
    assert 2 <= len(progress) <= took / PROGRESS_INTERVAL + 2 < 150, ([p["step"] for p in progress], took)
    assert progress[-1]["step"] == 150 and progress[-1]["total"] == 150
    assert all(p["stage"] == "training" for p in progress)


def test_a_killed_job_resumes_from_its_checkpoint_to_the_same_result(rig: Rig) -> None:
    job = rig.job(steps=60, step_seconds=0.03)
    rig.runner.tick()
    pid = rig.recorder.wait("training.started")["pid"]
    rig.recorder.wait("training.checkpoint")
    os.kill(pid, signal.SIGKILL)
    paused = rig.recorder.wait("training.paused")
    assert paused["attempt"] == 1 and "job process died (signal 9)" in paused["reason"]
    assert rig.wait_state(job, "queued").attempts == 1
    rig.runner.tick()
    resumed = rig.recorder.wait("training.resumed")
    assert resumed["pid"] != pid
    rig.recorder.wait("training.finished", timeout=60)
    assert result_of(rig) == expected_value("owner", 60)
    assert "attempt 2 on cpu" in rig.layout.status_files("counting", "owner").log_path.read_text()


def test_a_job_that_keeps_dying_fails_after_its_restarts(rig: Rig) -> None:
    runner = rig.another_runner(max_restarts=1)
    rig.runner.release()
    job = rig.job(steps=200, step_seconds=0.05)
    for attempt in (1, 2):
        runner.tick()
        pid = rig.recorder.wait("training.started" if attempt == 1 else "training.resumed")["pid"]
        os.kill(pid, signal.SIGKILL)
        if attempt == 1:
            rig.wait_state(job, "queued")
    failed = rig.recorder.wait("training.failed")
    assert failed["error"] == "job process died 2 times (last exit code -9); see the log"
    assert rig.wait_state(job, "failed").error == failed["error"]
    runner.stop()


def test_a_refused_dataset_fails_at_once_with_the_reason(rig: Rig) -> None:
    job = rig.job(refuse="3 WAV files, need at least 10. Record more samples.")
    rig.runner.tick()
    failed = rig.recorder.wait("training.failed")
    assert failed["error"] == "3 WAV files, need at least 10. Record more samples."
    done = rig.wait_state(job, "failed")
    assert done.attempts == 0 and not rig.recorder.named("training.paused")  # not retried as a crash
    status = json.loads(rig.layout.status_files("counting", "owner").json_path.read_text())
    assert status["state"] == "failed" and "need at least 10" in status["error"]


def test_ended_jobs_leave_no_checkpoints_and_only_the_newest_failed_ones_stay(rig: Rig) -> None:
    runner = rig.another_runner(keep_failed=1)
    rig.runner.release()
    finished = rig.job(steps=12)
    runner.tick()
    rig.recorder.wait("training.finished")  # told once the job's files are dealt with
    assert not rig.layout.training_dir("default", finished.id).exists()
    failed = []
    for n in range(3):
        failed.append(rig.job(refuse="too few samples", speaker=f"s{n}"))
        runner.tick()
        rig.recorder.wait("training.failed", count=n + 1)
        rig.wait_state(failed[-1], "failed")
        time.sleep(0.02)  # distinct folder times
    assert rig.layout.training_dir("default", failed[-1].id).is_dir()  # the newest, to look into
    assert not any(rig.layout.training_dir("default", j.id).exists() for j in failed[:-1])
    pruned = rig.recorder.named("training.pruned")
    assert [p["checkpoints"] for p in pruned] == [[failed[0].id], [failed[1].id]]
    runner.stop()


def test_a_long_log_is_moved_aside_at_the_next_job(rig: Rig) -> None:
    runner = rig.another_runner(log_max_bytes=1000)
    rig.runner.release()
    log = rig.layout.status_files("counting", "owner").log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("old line\n" * 200)
    job = rig.job(steps=5)
    runner.tick()
    rig.wait_state(job, "finished")
    assert log.with_name(log.name + ".1").read_text() == "old line\n" * 200
    assert "old line" not in log.read_text() and "attempt 1 on cpu" in log.read_text()
    rotated = rig.recorder.named("training.log_rotated")
    assert len(rotated) == 1 and rotated[0]["bytes"] == 1800
    small = rig.job(steps=5)  # under the limit now: appended to
    runner.tick()
    rig.wait_state(small, "finished")
    assert log.read_text().count("attempt 1 on cpu") == 2 and len(rig.recorder.named("training.log_rotated")) == 1
    runner.stop()


def test_a_job_that_cannot_be_prepared_fails(rig: Rig) -> None:
    job = rig.job(speaker="unpreparable")
    rig.runner.tick()
    assert rig.recorder.wait("training.failed")["error"] == "cannot start: the dataset folder is not readable"
    assert rig.state(job) == "failed" and rig.runner.running_job is None


def test_cancelling_a_running_a_queued_and_a_finished_job(rig: Rig) -> None:
    running = rig.job(steps=400, step_seconds=0.05, speaker="a")
    rig.runner.tick()
    pid = rig.recorder.wait("training.started")["pid"]
    rig.recorder.wait("training.checkpoint")
    info = rig.runner.running_info()  # what the GPU screen shows of it
    assert info is not None and info.pop("progress") is not None
    assert info == {"job": running.id, "profile": "default", "provider": "counting", "speaker": "a", "device": "cpu",
                    "pid": pid}
    waiting = rig.job(speaker="b")
    cancelled = rig.runner.cancel(waiting.id)
    assert cancelled.state == "cancelled" and cancelled.finished is not None and cancelled.finished >= waiting.created
    assert rig.recorder.named("training.cancelled")[0]["job"] == waiting.id
    rig.runner.cancel(running.id)
    assert rig.recorder.wait("training.cancelled", count=2)["job"] == running.id
    rig.wait_state(running, "cancelled")
    assert rig.runner.running_info() is None
    assert not rig.layout.training_dir("default", running.id).exists()  # a cancelled run's checkpoints go
    assert not rig.layout.voice_folder("default", "counting-models", "a").joinpath("result.txt").exists()
    finished = rig.job(speaker="c")
    rig.runner.tick()
    rig.wait_state(finished, "finished")
    assert rig.runner.cancel(finished.id).state == "finished"
    with pytest.raises(KeyError):
        rig.runner.cancel("20260101000000-abcdef")


def test_jobs_run_one_at_a_time_oldest_first(rig: Rig) -> None:
    first, second = rig.job(steps=30, step_seconds=0.02, speaker="a"), rig.job(steps=5, speaker="b")
    rig.runner.tick()
    rig.runner.tick()  # the first still runs: nothing else starts
    assert rig.prepared == [first.id]
    rig.wait_state(first, "finished")
    rig.runner.tick()
    rig.wait_state(second, "finished")
    assert rig.prepared == [first.id, second.id]


def test_idle_jobs_wait_for_the_window_and_the_quiet(rig: Rig) -> None:
    rig.policy.window = parse_window("03:00-03:01") if time.localtime().tm_hour != 3 else parse_window("05:00-05:01")
    job = rig.job(when="idle")
    rig.runner.tick()
    rig.runner.tick()
    assert rig.prepared == [] and rig.state(job) == "queued"
    waiting = [s["training"].get("waiting") for s in rig.recorder.states if "training" in s]
    assert waiting[-1].startswith("waiting for the idle window") and waiting.count(waiting[-1]) == 1
    rig.policy.window = parse_window("00:00-23:59")
    rig.policy.touch()  # speech a moment ago: not quiet yet
    rig.runner.tick()
    assert rig.prepared == []
    assert "s more without speech" in rig.jobs.get(job.id).progress["waiting"]  # type: ignore[union-attr]
    rig.clock[0] += 61
    rig.runner.tick()
    rig.wait_state(job, "finished")
    assert "waiting" not in rig.jobs.get(job.id).progress  # type: ignore[union-attr]


def test_speech_pauses_a_gpu_job_which_resumes_when_quiet(rig: Rig) -> None:
    rig.gpus.available = True  # 23 GB free: the job gets the GPU
    job = rig.job(steps=60, step_seconds=0.05, speaker="gpu")
    rig.runner.tick()
    assert rig.recorder.wait("training.started")["device"] == "cuda"
    rig.recorder.wait("training.checkpoint")

    rig.policy.touch()  # the household speaks...
    rig.runner.on_speech()
    paused = rig.recorder.wait("training.paused")
    assert "speech" in paused["reason"] and paused["step"] >= 5  # where it resumes from
    assert rig.wait_state(job, "paused").attempts == 0
    rig.runner.tick()
    assert rig.runner.running_job is None, "resumed while it was not quiet yet"

    rig.clock[0] += 60  # ...then it is quiet for a minute (quietSeconds: 60, and not a moment more)
    rig.runner.tick()
    assert rig.recorder.wait("training.resumed")["device"] == "cuda"
    rig.recorder.wait("training.finished", timeout=60)
    assert result_of(rig, "gpu") == expected_value("gpu", 60)


def test_speech_leaves_a_cpu_job_alone(rig: Rig) -> None:
    job = rig.job(steps=40, step_seconds=0.02)
    rig.runner.tick()
    rig.recorder.wait("training.started")
    rig.runner.on_speech()
    rig.wait_state(job, "finished")
    assert not rig.recorder.named("training.paused")


def test_a_stop_checkpoints_and_the_next_runner_resumes_to_the_same_result(rig: Rig) -> None:
    job = rig.job(steps=80, step_seconds=0.03)
    rig.runner.tick()
    rig.recorder.wait("training.checkpoint")  # said by its follower: a daemon thread named for the job
    assert [t.daemon for t in threading.enumerate() if t.name == f"train-{job.id}"] == [True]
    rig.recorder.slow["training.paused"] = 0.5
    rig.runner.stop()
    paused = rig.recorder.named("training.paused")  # told before stop returns: the broker's connection closes next
    assert len(paused) == 1 and "agent is stopping" in paused[0]["reason"] and rig.state(job) == "queued"
    saved = rig.jobs.get(job.id)
    assert saved is not None and 0 < saved.progress["step"] < 80

    later = rig.another_runner()
    assert later.recover()
    later.tick()
    assert rig.recorder.wait("training.resumed")["job"] == job.id
    rig.recorder.wait("training.finished", timeout=60)
    assert result_of(rig) == expected_value("owner", 80)
    later.stop()


def test_a_job_that_does_not_stop_when_asked_is_killed_after_the_grace(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "STOP_GRACE", 0.5)  # 60 s in the agent
    job = rig.job(steps=2000, step_seconds=0.02, ignore_stop=True)  # 40 s if it ran to its end
    rig.runner.tick()
    rig.recorder.wait("training.checkpoint")
    pid = rig.runner.running_info()["pid"]  # type: ignore[index]
    rig.runner.stop()
    paused = rig.recorder.named("training.paused")
    assert len(paused) == 1 and "agent is stopping" in paused[0]["reason"] and rig.state(job) == "queued"
    assert not rig.recorder.named("training.finished")
    saved = rig.jobs.get(job.id)
    assert saved is not None and 0 < saved.progress["step"] < 2000
    with pytest.raises(ProcessLookupError):  # killed, and reaped by its follower
        os.kill(pid, 0)


def test_after_a_stop_no_tick_starts_a_job(rig: Rig) -> None:
    """The scheduler's thread may tick once more while the agent stops: the runner stays stopped."""
    rig.runner.stop()
    job = rig.job()
    rig.runner.tick()
    assert rig.prepared == [] and rig.state(job) == "queued" and rig.runner.running_job is None
    other = rig.another_runner()  # nor holds the home's jobs: the next runner may take them
    assert other.recover()
    other.release()


def test_one_runner_runs_a_homes_jobs(rig: Rig) -> None:
    """The agent and a training in the foreground never run the same jobs: whoever holds the
    home's jobs.lock does, and a job left running by a runner that died is only reset by the next."""
    assert rig.runner.recover()
    other = rig.another_runner()
    assert other.recover() is False
    job = rig.job()
    other.tick()
    assert rig.prepared == [] and rig.state(job) == "queued"
    crashed = rig.jobs.update(job, state="running")  # as if its runner died mid-job
    assert other.recover() is False and rig.state(crashed) == "running"
    rig.runner.release()
    assert other.recover() and rig.state(crashed) == "queued"
    assert rig.layout.jobs_lock.read_text().strip() == str(os.getpid())
    other.tick()
    rig.wait_state(job, "finished")
    other.stop()


def test_the_next_runner_resumes_only_what_was_running(rig: Rig) -> None:
    done = rig.job(steps=3, speaker="done")
    rig.runner.tick()
    rig.wait_state(done, "finished")
    waiting = rig.job(speaker="later", when="idle")
    rig.runner.release()
    later = rig.another_runner()
    assert later.recover()
    assert rig.state(done) == "finished" and rig.state(waiting) == "queued"
    later.release()
