"""The agent as the server's caretaker: the fake GPT-SoVITS runs as a real child process."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from providers.base import ProviderContext, ProviderUnavailableError
from providers.sovits.config import SovitsSettings
from providers.sovits.engine import SovitsProvider
from providers.sovits.servers import ServerConfigError, ServerManager, log_path, server_command
from providers.sovits.supervisor import RestartPolicy, answers
from tests.fake_sovits import FakeSovits
from tests.mosquitto import free_port

TESTS = Path(__file__).resolve().parents[2]


def fake_server(port: int, *extra: str, **settings: object) -> SovitsSettings:
    """tts.sovits settings whose server command is the fake GPT-SoVITS."""
    return SovitsSettings.model_validate({
        "serverUrl": f"http://127.0.0.1:{port}", "installDir": str(TESTS), "python": sys.executable,
        "serverArgs": ["fake_sovits.py", "-a", "{host}", "-p", "{port}", "-c", "GPT_SoVITS/configs/tts_infer.yaml", *extra],
        "startTimeout": 30, **settings,
    })


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.fixture()
def servers() -> Iterator[ServerManager]:
    manager = ServerManager(RestartPolicy(first_pause=0.2, max_failed_starts=3))
    yield manager
    manager.stop_all()


def test_start_waits_until_it_answers_and_logs_its_output(servers: ServerManager, home: Path, ctx: ProviderContext) -> None:
    port = free_port()
    status = servers.start(fake_server(port, "--startup-delay", "0.5"), ctx, wait=True)

    assert status["state"] == "running" and status["pid"]
    assert answers("127.0.0.1", port)
    log = log_path(ctx.run_dir)
    assert log == home / "logs" / "run" / "sovits-server.log"
    wait_until("the server's own output is in the log", lambda: f"Uvicorn running on http://127.0.0.1:{port}" in log.read_text())
    assert "voice-agent starts:" in log.read_text()
    assert status["command"][1:4] == ["fake_sovits.py", "-a", "127.0.0.1"]


def test_dead_server_is_restarted_with_growing_pauses(servers: ServerManager, home: Path, ctx: ProviderContext, reference: Path) -> None:
    settings = fake_server(free_port())
    first = servers.start(settings, ctx, wait=True)["pid"]

    os.kill(first, signal.SIGKILL)
    wait_until("restarted once", lambda: servers.status(settings, ctx)["restarts"] == 1 and servers.status(settings, ctx)["state"] == "running")
    second = servers.status(settings, ctx)["pid"]
    assert second != first and alive(second)

    with contextlib.suppress(http.client.HTTPException, OSError):  # it may exit before answering
        urllib.request.urlopen(f"{settings.base_url}/control?command=exit", timeout=5).read()
    wait_until("restarted twice", lambda: servers.status(settings, ctx)["restarts"] == 2 and servers.status(settings, ctx)["state"] == "running")
    log = log_path(ctx.run_dir).read_text()
    assert "server exited with code -9; restarting in 0.2 s" in log
    assert "restarting in 0.4 s" in log

    provider = SovitsProvider()
    try:
        assert list(provider.synthesize("Back again.", settings, ctx))
    finally:
        provider.close()


def test_stop_ends_the_server(servers: ServerManager, home: Path, ctx: ProviderContext) -> None:
    settings = fake_server(free_port())
    pid = servers.start(settings, ctx, wait=True)["pid"]

    status = servers.stop(settings)

    assert status["state"] == "stopped" and status["pid"] is None
    assert not alive(pid)
    assert not answers("127.0.0.1", settings.port)
    assert servers.status(settings, ctx)["state"] == "stopped"


def test_a_server_that_keeps_dying_is_given_up(servers: ServerManager, home: Path, ctx: ProviderContext) -> None:
    settings = fake_server(free_port(), "--exit-at-start", "3")
    with pytest.raises(ProviderUnavailableError, match=r"did not come up \(failed: exited 3 times \(last code 3\) before answering"):
        servers.start(settings, ctx, wait=True)
    assert "GPT_SoVITS/pretrained_models is empty" in log_path(ctx.run_dir).read_text()


def test_a_server_that_never_answers_is_stopped(home: Path, ctx: ProviderContext) -> None:
    servers = ServerManager(RestartPolicy(max_failed_starts=1))
    settings = fake_server(free_port(), "--startup-delay", "60", startTimeout=0.5)
    try:
        with pytest.raises(ProviderUnavailableError, match="did not come up"):
            servers.start(settings, ctx, wait=True)
    finally:
        servers.stop_all()
    assert "server did not answer within 0.5 s (tts.sovits.startTimeout); stopping it" in log_path(ctx.run_dir).read_text()


def test_a_server_already_answering_is_left_alone(servers: ServerManager, home: Path, ctx: ProviderContext) -> None:
    other = FakeSovits().start()
    try:
        settings = fake_server(other.port)
        assert servers.start(settings, ctx, wait=True)["state"] == "external"
        with pytest.raises(ProviderUnavailableError, match="was not started by this agent"):
            servers.stop(settings)
        assert answers("127.0.0.1", other.port)
    finally:
        other.stop()


def test_server_left_behind_by_a_dead_agent_is_replaced(servers: ServerManager, home: Path, ctx: ProviderContext) -> None:
    settings = fake_server(free_port())
    command = server_command(settings, home)
    orphan = subprocess.Popen(command.argv, cwd=command.cwd, start_new_session=True, stdout=subprocess.DEVNULL)
    (home / "logs" / "run").mkdir(parents=True)
    (home / "logs" / "run" / f"sovits-server-{settings.port}.pid").write_text(f"{orphan.pid}\n")
    wait_until("the orphan answers", lambda: answers("127.0.0.1", settings.port))

    status = servers.start(settings, ctx, wait=True)

    assert orphan.wait(10) is not None
    assert status["state"] == "running" and status["pid"] != orphan.pid


def test_auto_start_on_first_request_and_stop_with_the_provider(home: Path, ctx: ProviderContext, reference: Path) -> None:
    settings = fake_server(free_port(), autoStart=True)
    provider = SovitsProvider()
    provider.preload(settings, ctx)  # selected in voice.json: starting, not waited for
    assert provider.servers.status(settings, ctx)["state"] in ("starting", "running")

    chunks = list(provider.synthesize("Started for me.", settings, ctx))
    pid = provider.servers.status(settings, ctx)["pid"]
    provider.close()

    assert chunks and pid
    assert not alive(pid)


def test_auto_start_respects_a_manual_stop(servers: ServerManager, home: Path, ctx: ProviderContext, reference: Path) -> None:
    provider = SovitsProvider()
    provider.servers = servers
    settings = fake_server(free_port(), autoStart=True)
    servers.start(settings, ctx, wait=True)
    servers.stop(settings)
    with pytest.raises(ProviderUnavailableError, match="was stopped"):
        list(provider.synthesize("Stay quiet.", settings, ctx))
    assert servers.status(settings, ctx)["state"] == "stopped"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"installDir": "/nonexistent/GPT-SoVITS"}, "GPT-SoVITS is not installed in /nonexistent/GPT-SoVITS: run `voice-agent sovits install`"),
        ({"python": "venv/bin/python"}, "Python .*venv/bin/python does not exist"),
        ({"python": "no-such-python3"}, "'no-such-python3' is not on PATH"),
        ({"serverArgs": ["api_v2.py"]}, "api_v2.py does not exist: is .* a GPT-SoVITS checkout"),
        ({"serverUrl": "http://192.0.2.10:9880"}, "is another machine: the agent starts servers only on its own"),
    ],
)
def test_configuration_problems_are_explained(home: Path, change: dict[str, object], words: str) -> None:
    settings = SovitsSettings.model_validate({**fake_server(9880).model_dump(by_alias=True), **change})
    with pytest.raises(ServerConfigError, match=words):
        server_command(settings, home)
