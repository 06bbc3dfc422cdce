"""A home's lock: one holder at a time, let go when the holder closes it or its process ends;
the agent takes it before anything else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import daemon, lockfile
from agent.layout import Layout
from agent.settings import AgentSettings


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "out" / "agent.lock"
    first = lockfile.hold(path)
    assert first is not None and lockfile.holder(path) == str(os.getpid())
    assert lockfile.hold(path) is None  # a second open file of the same process is turned away too
    first.close()
    again = lockfile.hold(path)
    assert again is not None
    again.close()


def test_a_holder_that_dies_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    script = ("import sys, time; from pathlib import Path; from agent import lockfile; "
              "h = lockfile.hold(Path(sys.argv[1])); print('held' if h else 'busy', flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        assert lockfile.hold(path) is None and lockfile.holder(path) == str(other.pid)
    finally:
        other.kill()
        other.wait()
    mine = lockfile.hold(path)  # the file is still there, the lock is not
    assert mine is not None and lockfile.holder(path) == str(os.getpid())
    mine.close()


def test_holder_of_a_missing_file(tmp_path: Path) -> None:
    assert lockfile.holder(tmp_path / "nothing.lock") == "?"


def test_holder_of_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "agent.lock").write_text("\n")  # a lock file whose holder has not written its pid yet
    assert lockfile.holder(tmp_path / "agent.lock") == "?"


def test_a_lock_in_folders_not_made_yet(tmp_path: Path) -> None:
    path = tmp_path / "home" / "out" / "agent.lock"  # a fresh home: neither folder exists
    held = lockfile.hold(path)
    assert held is not None and lockfile.holder(path) == str(os.getpid())
    held.close()


def test_the_agent_takes_the_lock_before_anything_else(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    settings = AgentSettings(home=tmp_path)
    touched: list[str] = []
    monkeypatch.setattr(daemon, "Agent", lambda s: touched.append("agent"))
    monkeypatch.setattr(daemon, "broker_answers", lambda *a: touched.append("broker"))
    held = lockfile.hold(Layout(tmp_path).agent_lock)
    assert held is not None
    try:
        assert daemon.run(settings) == 1
    finally:
        held.close()
    assert touched == []
    assert f"another agent runs in this home ({tmp_path}, pid {os.getpid()}" in caplog.text


def test_a_home_that_cannot_hold_a_lock_is_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "out").write_text("a file where the folder should be")
    assert daemon.run(AgentSettings(home=tmp_path)) == 1
    assert "cannot take the home's lock" in caplog.text
