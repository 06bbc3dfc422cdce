"""GPU arbitration against a test GpuInfo (honestly fake: NVML cannot run here) and a real
child process standing in for Ollama, which must always end up running again."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.gpu.status import Gpu, GpuReport, NvmlInfo


class FakeGpus:
    """A GPU whose free memory the test sets; every report reflects it."""

    def __init__(self, total: int, used: int, available: bool = True) -> None:
        self.total, self.used, self.available = total, used, available

    def report(self) -> GpuReport:
        if not self.available:
            return GpuReport(False, "no GPU: test machine")
        return GpuReport(True, "", [Gpu(0, "Test GPU", self.total, self.used)])


@pytest.fixture()
def hog(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    script = tmp_path / "ollama"
    ready = tmp_path / "ready"
    script.write_text(f"#!{sys.executable}\nimport pathlib, time\npathlib.Path({str(ready)!r}).touch()\n"
                      "while True: time.sleep(0.05)\n")
    script.chmod(0o755)
    process = subprocess.Popen([str(script), "serve"])
    deadline = time.monotonic() + 10
    while not ready.exists():  # the fake Ollama is up and running its loop
        assert time.monotonic() < deadline and process.poll() is None, "fake ollama did not start"
        time.sleep(0.01)
    yield process
    process.kill()
    process.wait()


def stopped(pid: int) -> bool:
    """Whether the process is stopped (polled: the kernel delivers signals asynchronously)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
            return True
        time.sleep(0.01)
    return False


def running(pid: int) -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if psutil.Process(pid).status() != psutil.STATUS_STOPPED:
            return True
        time.sleep(0.01)
    return False


def test_no_gpu_means_cpu(tmp_path: Path) -> None:
    arbiter = GpuArbiter(FakeGpus(0, 0, available=False), HogPauser(["ollama"], tmp_path / "s.json"), lambda n, d: None)
    with arbiter.reserve(4000, "training", pause_hogs=True) as device:
        assert device == "cpu"


def test_room_on_the_gpu_means_cuda_without_pausing(tmp_path: Path, hog: subprocess.Popen[bytes]) -> None:
    events: list[str] = []
    arbiter = GpuArbiter(FakeGpus(24000, 4000), HogPauser(["ollama"], tmp_path / "s.json"), lambda n, d: events.append(n))
    with arbiter.reserve(6000, "training", pause_hogs=True) as device:
        assert device == "cuda" and running(hog.pid)
    assert events == []


def test_who_holds_the_gpu_is_known_while_they_hold_it(tmp_path: Path) -> None:
    arbiter = GpuArbiter(FakeGpus(24000, 4000), HogPauser([], tmp_path / "s.json"), lambda n, d: None)
    with arbiter.reserve(6000, "training", pause_hogs=False) as device:
        with arbiter.reserve(1000, "rvc", pause_hogs=False):
            assert device == "cuda"
            assert [(h["purpose"], h["need_mb"]) for h in arbiter.holders()] == [("training", 6000), ("rvc", 1000)]
        assert [h["purpose"] for h in arbiter.holders()] == ["training"]
    with pytest.raises(RuntimeError), arbiter.reserve(6000, "rvc", pause_hogs=False):
        raise RuntimeError("the work failed")
    assert arbiter.holders() == []
    busy = GpuArbiter(FakeGpus(8000, 7000), HogPauser([], tmp_path / "s.json"), lambda n, d: None)
    with busy.reserve(6000, "training", pause_hogs=False) as device:
        assert device == "cpu" and busy.holders() == []  # on the CPU: it holds no GPU


def test_hog_is_paused_then_resumed_even_when_the_job_fails(tmp_path: Path, hog: subprocess.Popen[bytes]) -> None:
    gpus = FakeGpus(8000, 7000)
    events: list[str] = []
    pauser = HogPauser(["ollama"], tmp_path / "paused.json")
    arbiter = GpuArbiter(gpus, pauser, lambda n, d: events.append(n), vram_wait_seconds=2)
    with pytest.raises(RuntimeError):
        with arbiter.reserve(6000, "rvc", pause_hogs=True) as device:
            assert stopped(hog.pid)
            assert (tmp_path / "paused.json").exists()  # recorded before SIGSTOP
            assert device == "cpu"  # SIGSTOP frees no VRAM here: the work goes to the CPU
            raise RuntimeError("job failed")
    assert running(hog.pid)
    assert events == ["ollama_paused_for_rvc", "ollama_resumed_after_rvc"]
    assert not (tmp_path / "paused.json").exists()


def test_without_permission_to_pause_the_job_goes_to_cpu(tmp_path: Path, hog: subprocess.Popen[bytes]) -> None:
    arbiter = GpuArbiter(FakeGpus(8000, 7000), HogPauser(["ollama"], tmp_path / "s.json"), lambda n, d: None)
    with arbiter.reserve(6000, "training", pause_hogs=False) as device:
        assert device == "cpu" and running(hog.pid)


def test_leftovers_of_a_killed_agent_are_resumed(tmp_path: Path, hog: subprocess.Popen[bytes]) -> None:
    HogPauser(["ollama"], tmp_path / "paused.json").pause()
    assert stopped(hog.pid)
    # the agent died here; its next start:
    assert HogPauser(["ollama"], tmp_path / "paused.json").resume_leftovers() == [hog.pid]
    assert running(hog.pid)


def test_nvml_absent_says_no_gpu() -> None:
    report = NvmlInfo().report()
    assert report.available is False and report.reason.startswith("no GPU")
    assert report.as_dict()["gpus"] == []
