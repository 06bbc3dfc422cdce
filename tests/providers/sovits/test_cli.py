"""``voice-agent sovits`` where no agent or network is needed: install, logs, and a clear error
when the agent cannot be reached (the commands that reach it are in tests/e2e/test_sovits.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.mosquitto import free_port


def voice_agent(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_AGENT_HOME": str(home), "VOICE_AGENT_MQTT_PORT": str(free_port())}
    return subprocess.run(
        [sys.executable, "-m", "agent", "sovits", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_install_without_network_stops_with_the_steps_to_do_by_hand(home: Path) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/GPT-SoVITS.git"
    result = voice_agent(home, "install", "--repo", unreachable)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: step 1 failed: cannot reach 127.0.0.1 (no network here?)" in result.stderr
    target = home / "opt" / "GPT-SoVITS"  # tts.sovits.installDir's default, under the agent's home
    assert f"1. git clone --depth 1 {unreachable} {target}" in result.stderr
    assert "pretrained_models.zip" in result.stderr and "ffmpeg" in result.stderr
    assert not target.exists()


def test_install_refuses_a_folder_that_is_not_a_checkout(home: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = voice_agent(home, "install", "--dir", str(taken), "--repo", str(tmp_path / "local-repo.git"))

    assert result.returncode == 1
    assert f"{taken} exists and is not a GPT-SoVITS checkout" in result.stderr
    assert (taken / "notes.txt").read_text() == "mine"


def test_install_dry_run_lists_the_steps(home: Path) -> None:
    result = voice_agent(home, "install", "--dry-run", "--device", "cu128", "--source", "modelscope")

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1. git clone --depth 1 https://github.com/RVC-Boss/GPT-SoVITS.git")
    assert any("download.pytorch.org/whl/cu128" in line for line in lines)
    assert any("modelscope.cn" in line for line in lines)


def test_logs_before_any_server(home: Path) -> None:
    result = voice_agent(home, "logs")
    assert result.returncode == 1
    assert f"no server log yet at {home / 'logs' / 'run' / 'sovits-server.log'}" in result.stderr


def test_logs_tail(home: Path) -> None:
    log = home / "logs" / "run" / "sovits-server.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {i}\n" for i in range(500)))
    result = voice_agent(home, "logs", "-n", "3")
    assert result.returncode == 0 and result.stdout.splitlines() == ["line 497", "line 498", "line 499"]


def test_status_without_a_broker_is_a_clear_error(home: Path) -> None:
    result = voice_agent(home, "status")
    assert result.returncode == 1
    assert "error: cannot reach the MQTT broker at 127.0.0.1:" in result.stderr and "Traceback" not in result.stderr
