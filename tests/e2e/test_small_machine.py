"""The agent on a small machine: under a memory limit (a control group of its own, as a systemd
unit's MemoryMax makes one) it speaks, scores a burst of recordings and trains what fits, and a
training that could not fit is refused with ``not_enough_memory`` before it starts; nothing is
killed for memory (the group's OOM-kill count stays 0, the agent answers to the end).

The group is made under the test's own memory cgroup (v2 ``memory.max``, else v1
``memory.limit_in_bytes``); where that is not writable the test says so and skips. systemd-run
needs systemd as PID 1, and an address-space limit (``prlimit --as``) is no memory limit: torch
and ONNX Runtime reserve far more address space than they touch (bench/RESULTS.md "Memory")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, AgentProcess, Probe, make_home
from tests.mosquitto import Mosquitto
from tests.speech import OWNER_RATE, owner, wav, with_silence

pytestmark = pytest.mark.slow

LIMIT_MB = 1600  # the agent with Piper (~300 MB) and its analysis process (~800 MB), with room to spare
BASE = "small"


@dataclass
class Group:
    """A memory cgroup the test made, and how to read it."""

    path: Path
    limit_file: str
    events: Path  # where the kernel counts the OOM kills in it

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def peak_mb(self) -> int | None:
        """The most the group held at once (v1 ``memory.max_usage_in_bytes``, v2 ``memory.peak``)."""
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            if (self.path / name).exists():
                return int((self.path / name).read_text()) // (1024 * 1024)
        return None

    def oom_kills(self) -> int:
        for line in self.events.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self, back_to: Path) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            try:
                (back_to / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # it ended meanwhile
        self.path.rmdir()


def own_group() -> tuple[Path, str, str] | None:
    """This process's memory cgroup folder, the limit file's name and the OOM-count file's name."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "" and (Path("/sys/fs/cgroup") / path.strip("/") / "memory.max").exists():
            return Path("/sys/fs/cgroup") / path.strip("/"), "memory.max", "memory.events"
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.strip("/"), "memory.limit_in_bytes", "memory.oom_control"
    return None


@pytest.fixture(scope="module")
def group() -> Iterator[Group]:
    found = own_group()
    if found is None:
        pytest.fail("no memory cgroup to make a limited group in: this test needs the machine's memory controller "
                    "(cgroup v1 memory or v2 memory.max), as the CI machines have")
    parent, limit_file, events = found
    path = parent / f"voice-agent-test-{uuid.uuid4().hex[:6]}"
    try:
        path.mkdir()
        (path / limit_file).write_text(str(LIMIT_MB * 1024 * 1024))
    except OSError as exc:
        pytest.fail(f"cannot make a memory cgroup under {parent} ({exc}): run as root or in a delegated cgroup")
    made = Group(path, limit_file, path / events)
    yield made
    made.remove(parent)


@pytest.fixture(scope="module")
def agent(group: Group, tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    home = make_home(tmp_path_factory.mktemp("small-home"))
    env = {"VOICE_AGENT_BASE_TOPIC": BASE, "PYTHONPATH": str(REPO), "VOICE_AGENT_ANALYSIS_IDLE_SECONDS": "30",
           "VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"counting": "tests.fake_trainer:CountingTrainer"})}
    process = AgentProcess(home, broker.port, env).start()
    assert process.process is not None
    group.add(process.process.pid)  # before it loads anything: its analysis and job processes are born in the group
    process.wait_log("ready", timeout=120)
    yield process
    process.stop()


def alive(agent: AgentProcess, probe: Probe) -> None:
    assert agent.process is not None and agent.process.poll() is None, agent.log.read_text()[-3000:]
    assert probe.request("default", "train.status", {})["status"] == "ok"


def test_speaks_scores_and_trains_within_the_limit_and_refuses_what_cannot_fit(agent: AgentProcess, group: Group,
                                                                               broker: Mosquitto) -> None:
    probe = Probe(broker.port, base=BASE)
    try:
        memory = json.loads(probe.wait_topic(f"{BASE}/gpu/state", timeout=30))["memory"]
        assert memory["limit_mb"] == LIMIT_MB and 0 < memory["agent_mb"] < LIMIT_MB  # the agent sees its limit

        spoken = probe.request("default", "speak", {"text": "The laundry is ready."}, timeout=120)
        assert spoken["status"] == "ok", spoken

        recording = wav(with_silence(owner("This recording is scored on a small machine."), OWNER_RATE), OWNER_RATE)
        for _ in range(3):
            probe.publish(f"{BASE}/default/request/record", recording)
        answers: list[dict[str, object]] = []
        while len(answers) < 3:
            probe.wait_for(lambda t, _: t == f"{BASE}/default/response/record", timeout=300, after=len(answers))
            answers = probe.responses("default", "record")
        assert [a["status"] for a in answers] == ["ok"] * 3, answers
        assert answers[0]["data"]["warmup_seconds"] > 0  # type: ignore[index]  # the analysis process started for the first one
        alive(agent, probe)

        too_big = probe.request("default", "train", {"provider": "counting", "speaker": "big", "when": "now",
                                                     "params": {"steps": 3, "memory_mb": 4 * LIMIT_MB}})
        assert too_big["code"] == "not_enough_memory" and f"MemoryMax of {LIMIT_MB} MB" in too_big["error"], too_big

        fits = probe.request("default", "train", {"provider": "counting", "speaker": "small", "when": "now",
                                                  "params": {"steps": 3, "step_seconds": 0.01, "memory_mb": 100}})
        assert fits["status"] == "ok", fits
        job = fits["data"]["job"]["id"]
        finished = probe.wait_for(lambda t, p: t == f"{BASE}/default/event/training.finished"
                                  and json.loads(p)["data"]["job"] == job, timeout=120)
        assert finished
        alive(agent, probe)
        assert group.oom_kills() == 0  # nothing in the group was killed for memory
        peak = group.peak_mb()
        assert peak is None or 500 < peak <= LIMIT_MB  # the analysis process was in the group: the limit held it
    finally:
        probe.close()
