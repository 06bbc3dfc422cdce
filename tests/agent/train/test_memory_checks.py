"""A training job checks the memory it needs before it starts: refused when it could never fit
(``not_enough_memory``), waiting with the reason in its status while it does not fit now, started
once it does; the "gpu" state document carries the agent's memory. In-process, with the
stand-in trainer declaring its need and a memory report the test sets."""

from __future__ import annotations

import time

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.layout import Layout
from agent.memory import MemoryReport
from agent.record.service import RecordService
from agent.settings import AgentSettings
from agent.train.requests import TrainRequest
from agent.train.service import TrainService
from tests.agent.gpu.test_arbiter import FakeGpus
from tests.agent.record.test_service import FakeAnalyser


class Machine:
    """The memory report the service sees: a 4 GB box with a 2 GB MemoryMax, 300 MB of agent."""

    def __init__(self) -> None:
        self.available_mb = 1500
        self.limit_mb = 2048

    def __call__(self) -> MemoryReport:
        return MemoryReport(agent_mb=300, available_mb=self.available_mb, total_mb=4096, limit_mb=self.limit_mb,
                            limit_from="memory.max")


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[tuple[TrainService, Machine, StateBoard]]:
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    settings = AgentSettings(home=tmp_path, extra_trainers={"counting": "tests.fake_trainer:CountingTrainer"})
    layout = Layout(tmp_path)
    events, state = EventBus(), StateBoard()
    configs = ConfigStore(layout, events)
    records = RecordService(layout, configs, events, state, 4, FakeAnalyser())
    arbiter = GpuArbiter(FakeGpus(0, 0, available=False), HogPauser([], tmp_path / "paused.json"), lambda n, d: None)
    machine = Machine()
    service = TrainService(settings, layout, configs, records, events, state, arbiter, memory=machine)
    yield service, machine, state
    service.stop()
    records.stop()


def train(service: TrainService, memory_mb: int, check: bool = False) -> dict[str, object]:
    request = TrainRequest(provider="counting", speaker="owner", params={"memory_mb": memory_mb, "steps": 2},
                           when="now", check=check)
    return service.submit("default", request)


def test_a_job_that_could_never_fit_is_refused_before_it_is_queued(rig: tuple[TrainService, Machine, StateBoard]) -> None:
    service, machine, _ = rig
    with pytest.raises(ServiceError) as refused:
        train(service, 1800)  # MemoryMax 2048 less the agent's 300: 1748 at most, ever
    error = refused.value
    assert error.code == "not_enough_memory" and "MemoryMax of 2048 MB" in str(error)
    assert error.data is not None
    assert (error.data["need_mb"], error.data["limit_mb"], error.data["agent_mb"]) == (1800, 2048, 300)
    assert service.jobs.list() == []  # nothing queued


def test_a_job_waits_for_memory_with_the_reason_then_starts(rig: tuple[TrainService, Machine, StateBoard]) -> None:
    service, machine, state = rig
    checked = train(service, 1700, check=True)["memory"]
    assert checked["fits_now"] is False and checked["need_mb"] == 1700  # type: ignore[index]
    told: list[tuple[str, dict[str, object]]] = []
    service.runner._events.listen(lambda profile, name, data, when: told.append((name, data)))
    job = train(service, 1700)["job"]
    service.runner.tick()
    machine.available_mb = 1460  # a little less: the status follows, the household is not told again
    service.runner.tick()
    machine.available_mb = 1500
    service.runner.tick()
    assert [data["reason"] for name, data in told if name == "training.waiting"] == [
        "waiting for memory: needs about 1700 MB, 1500 MB available now"]  # the CLI's progress bar prints it
    waiting = service.jobs.get(job["id"])  # type: ignore[index]
    assert waiting is not None and waiting.state == "queued"
    assert waiting.progress["waiting"] == "waiting for memory: needs about 1700 MB, 1500 MB available now"
    assert state.get("default")["training"]["waiting"] == waiting.progress["waiting"]  # the page and MQTT see it

    machine.available_mb = 1740  # Ollama unloaded its model
    service.runner.tick()
    started = service.jobs.get(job["id"])  # type: ignore[index]
    assert started is not None and started.state in ("running", "finished")


def test_a_job_queued_before_the_limit_shrank_fails_with_the_code(rig: tuple[TrainService, Machine, StateBoard]) -> None:
    service, machine, _ = rig
    events: list[tuple[str, dict[str, object]]] = []
    service.runner._events.listen(lambda profile, name, data, when: events.append((name, data)))
    job = train(service, 1600)["job"]
    machine.available_mb, machine.limit_mb = 100, 1024  # the unit's MemoryMax was lowered and the agent restarted
    service.runner.tick()
    deadline = time.monotonic() + 10  # the runner's own thread may be the one that took the job: let it finish
    while (failed := service.jobs.get(job["id"])) is not None and failed.state == "queued":  # type: ignore[index]
        assert time.monotonic() < deadline, "the job was never started nor refused"
        time.sleep(0.02)
    assert failed is not None and failed.state == "failed" and "MemoryMax of 1024 MB" in (failed.error or "")
    name, data = events[-1]
    assert name == "training.failed" and data["code"] == "not_enough_memory" and data["error"] == failed.error


def test_the_gpu_state_document_carries_the_agents_memory(rig: tuple[TrainService, Machine, StateBoard]) -> None:
    service, _, state = rig
    service.publish_gpu_state()
    assert state.get("gpu")["memory"] == {"agent_mb": 300, "available_mb": 1500, "total_mb": 4096, "limit_mb": 2048,
                                          "limit_from": "memory.max", "process_mb": 0}


def test_the_check_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    settings = AgentSettings(home=tmp_path, extra_trainers={"counting": "tests.fake_trainer:CountingTrainer"},
                             train_memory_check=False)
    layout = Layout(tmp_path)
    events, state = EventBus(), StateBoard()
    configs = ConfigStore(layout, events)
    records = RecordService(layout, configs, events, state, 4, FakeAnalyser())
    arbiter = GpuArbiter(FakeGpus(0, 0, available=False), HogPauser([], tmp_path / "paused.json"), lambda n, d: None)
    service = TrainService(settings, layout, configs, records, events, state, arbiter, memory=Machine())
    try:
        assert train(service, 10_000, check=True)["memory"] is None  # not checked, not refused
    finally:
        service.stop()
        records.stop()
