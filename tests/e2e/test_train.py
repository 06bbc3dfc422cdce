"""Training jobs through the broker with a real job process: progress, a SIGKILL survived from
the checkpoint to the same result, an agent restart, cancellation, refusals."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, AgentProcess, Probe, make_home
from tests.fake_trainer import expected_value
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

ENV = {
    "VOICE_AGENT_BASE_TOPIC": "train",
    "VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"counting": "tests.fake_trainer:CountingTrainer"}),
    "PYTHONPATH": str(REPO),
}
BASE = "train"


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return make_home(tmp_path / "home")


@pytest.fixture()
def agent(home: Path, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = AgentProcess(home, broker.port, ENV).start()
    process.wait_log("ready")
    yield process
    process.stop()


def start_job(probe: Probe, steps: int, step_seconds: float = 0.05, speaker: str = "owner") -> str:
    response = probe.request("default", "train", {"provider": "counting", "speaker": speaker, "when": "now",
                                                  "params": {"steps": steps, "step_seconds": step_seconds, "save_every": 5}})
    assert response["status"] == "ok", response
    return str(response["data"]["job"]["id"])


def job_event(probe: Probe, name: str, job: str, timeout: float = 60, after: int = 0) -> dict:
    matches = []

    def match(topic: str, payload: bytes) -> bool:
        if topic == f"train/default/event/{name}" and json.loads(payload)["data"]["job"] == job:
            matches.append(payload)
            return len(matches) > after
        return False

    return json.loads(probe.wait_for(match, timeout)[1])["data"]


def result_of(home: Path, speaker: str = "owner") -> str:
    return (home / "profiles" / "default" / "out" / "voices" / "counting-models" / speaker / "result.txt").read_text()


def worker_pid(probe: Probe, job: str) -> int:
    started = job_event(probe, "training.started", job)
    return int(started["pid"])


def test_job_runs_with_progress_and_status_file(agent: AgentProcess, probe: Probe) -> None:
    job = start_job(probe, steps=60)
    assert job_event(probe, "training.queued", job)["when"] == "now"
    assert job_event(probe, "training.started", job)["device"] == "cpu"
    progress = job_event(probe, "training.progress", job)
    assert progress["total"] == 60 and progress["stage"] == "training"
    assert job_event(probe, "training.checkpoint", job)["step"] % 5 == 0
    finished = job_event(probe, "training.finished", job)
    assert finished["metrics"]["steps"] == 60
    assert result_of(agent.home) == expected_value("owner", 60)
    status = json.loads((agent.home / "logs" / "run" / "counting-training-owner.json").read_text())
    assert status["state"] == "finished" and status["step"] == 60 and status["job"] == job
    def this_job_done(topic: str, payload: bytes) -> bool:  # not the retained state of the test before's job
        training = (json.loads(payload).get("training") or {}) if topic == "train/default/state" else {}
        return bool(training.get("job") == job and training.get("done"))

    state = json.loads(probe.wait_for(this_job_done, 10)[1])
    assert state["training"]["state"] == "finished"
    listed = probe.request("default", "train.status", {"job": job})["data"]["job"]
    assert listed["state"] == "finished"


def test_killed_job_resumes_from_checkpoint_to_the_same_result(agent: AgentProcess, probe: Probe) -> None:
    job = start_job(probe, steps=80, speaker="killed")
    pid = worker_pid(probe, job)
    checkpoint = job_event(probe, "training.checkpoint", job, after=2)
    os.kill(pid, signal.SIGKILL)
    paused = job_event(probe, "training.paused", job)
    assert "signal 9" in paused["reason"] and "checkpoint" in paused["reason"]
    resumed = job_event(probe, "training.resumed", job)
    assert resumed["pid"] != pid
    job_event(probe, "training.finished", job, timeout=90)
    assert result_of(agent.home, "killed") == expected_value("killed", 80)
    log = (agent.home / "logs" / "run" / "counting-training-killed.log").read_text()
    assert log.count("--- ") == 2 and checkpoint["step"] >= 15


def test_agent_restart_resumes_the_job(home: Path, broker: Mosquitto, probe: Probe) -> None:
    first = AgentProcess(home, broker.port, ENV).start()
    first.wait_log("ready")
    job = start_job(probe, steps=100, speaker="restart")
    job_event(probe, "training.checkpoint", job, after=1)
    assert first.stop() == 0
    paused = job_event(probe, "training.paused", job)
    assert "agent is stopping" in paused["reason"]
    second = AgentProcess(home, broker.port, ENV).start()
    try:
        second.wait_log("ready")
        job_event(probe, "training.resumed", job)
        job_event(probe, "training.finished", job, timeout=90)
        assert result_of(home, "restart") == expected_value("restart", 100)
    finally:
        second.stop()


def test_cancel_a_running_job(agent: AgentProcess, probe: Probe) -> None:
    job = start_job(probe, steps=1000, step_seconds=0.05, speaker="cancel")
    job_event(probe, "training.started", job)
    response = probe.request("default", "train.cancel", {"job": job})
    assert response["status"] == "ok"
    job_event(probe, "training.cancelled", job)
    assert probe.request("default", "train.status", {"job": job})["data"]["job"]["state"] == "cancelled"


def test_refusals(agent: AgentProcess, probe: Probe) -> None:
    not_ready = probe.request("default", "train", {"provider": "rvc", "when": "now"})
    assert not_ready["code"] == "not_ready" and "more samples" in not_ready["error"]
    out_of_range = probe.request("default", "train", {"provider": "rvc", "params": {"totalEpochs": 50, "batchSize": 64}})
    assert out_of_range["code"] == "invalid_params"
    assert "totalEpochs" in out_of_range["error"] and "batchSize" in out_of_range["error"]
    bad = probe.request("default", "train", {"provider": "counting", "params": {"steps": 0}})
    assert bad["code"] == "invalid_params" and "steps" in bad["error"]
    unknown = probe.request("default", "train", {"provider": "espeak"})
    assert unknown["code"] == "unknown_trainer"
    job = start_job(probe, steps=1000, speaker="dup")
    duplicate = probe.request("default", "train", {"provider": "counting", "speaker": "dup", "when": "now"})
    assert duplicate["code"] == "duplicate" and job in duplicate["error"]
    probe.request("default", "train.cancel", {"job": job})
    assert probe.request("default", "train.cancel", {"job": "20260101000000-abcdef"})["code"] == "unknown_job"


def test_idle_job_waits_for_the_window(home: Path, broker: Mosquitto, probe: Probe) -> None:
    hour = time.localtime().tm_hour
    window = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # certainly not now
    agent = AgentProcess(home, broker.port, {**ENV, "VOICE_AGENT_IDLE_WINDOW": window}).start()
    try:
        agent.wait_log("ready")
        response = probe.request("default", "train", {"provider": "counting", "speaker": "idle", "when": "idle"})
        job = response["data"]["job"]["id"]
        state = probe.wait_for(lambda t, p: t == "train/default/state" and b"waiting for the idle window" in p, 20)
        assert job in state[1].decode()
        assert probe.request("default", "train.status", {"job": job})["data"]["job"]["state"] == "queued"
    finally:
        agent.stop()


def test_cli_starts_and_follows_a_job(agent: AgentProcess, probe: Probe) -> None:
    import subprocess
    import sys

    env = {**os.environ, **ENV, "VOICE_AGENT_HOME": str(agent.home), "VOICE_AGENT_MQTT_PORT": str(agent.port)}
    result = subprocess.run(
        [sys.executable, "-m", "agent", "train", "start", "counting", "--speaker", "cli", "--when", "now",
         "--params", '{"steps": 30, "step_seconds": 0.05}'],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "queued job" in result.stdout and "finished:" in result.stdout
    assert "30/30" in result.stderr  # the progress bar reached the end
    assert result_of(agent.home, "cli") == expected_value("cli", 30)


def test_gpu_state_is_retained_and_says_no_gpu(agent: AgentProcess, probe: Probe) -> None:
    state = json.loads(probe.wait_topic("train/gpu/state", timeout=10))
    assert state["available"] is False and state["reason"].startswith("no GPU") and state["gpus"] == []


def test_enough_new_samples_queue_a_retraining(home: Path, broker: Mosquitto, probe: Probe) -> None:
    from tests.conftest import write_json
    from tests.speech import OWNER_RATE, owner, wav, with_silence

    write_json(home / "profiles" / "default" / "etc" / "voice.json",
               {"train": {"autoRetrain": {"enabled": True, "provider": "counting", "speaker": "auto", "newSamples": 1}}})
    agent = AgentProcess(home, broker.port, {**ENV, "VOICE_AGENT_IDLE_WINDOW": "00:00-00:01"}).start()
    try:
        agent.wait_log("ready")
        text = "Every good sample brings the next version of my voice a little closer."
        recorded = probe.request("default", "record", wav(with_silence(owner(text), OWNER_RATE), OWNER_RATE), timeout=120)
        assert recorded["data"]["kept"], recorded
        queued = probe.wait_for(lambda t, p: t == "train/default/event/training.queued" and b'"auto"' in p, 30)
        assert json.loads(queued[1])["data"]["when"] == "idle"
    finally:
        agent.stop()


def test_kokoro_voicepack_job_runs_through_the_runner(home: Path, broker: Mosquitto, probe: Probe,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """The real Kokoro trainer under the job runner: a user-filled dataset folder is used as is."""
    from tests.e2e.kokoro_job import NO_MEMORY_CHECK, start_voicepack_job, voicepack_dataset
    from tests.providers.kokoro.models import install_models, prepared_models

    install_models(prepared_models(tmp_path_factory), home)
    voicepack_dataset(home)
    agent = AgentProcess(home, broker.port, {**ENV, **NO_MEMORY_CHECK}).start()
    try:
        agent.wait_log("ready")
        job = start_voicepack_job(probe)
        finished = job_event(probe, "training.finished", job, timeout=300)
        pack = Path(finished["outputs"][0])
        assert pack.is_file() and pack.parent == home / "profiles" / "default" / "out" / "voices" / "kokoro-voicepacks" / "joe"
    finally:
        agent.stop()
