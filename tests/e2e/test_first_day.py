"""A new user's first day (issue 18, items 8-11): a second `make run` on the same home, a session
taken over on the broker, settings that are wrong in the ways people get them wrong, the CLI's
help and answers, and `make run` keeping the household's settings out of the checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from tests.audio_checks import assert_speech
from tests.conftest import REPO, AgentProcess, Probe, make_home
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow


def voice_agent(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``voice-agent ARGS`` as a user types it, with ``home`` as VOICE_AGENT_HOME."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")}
    full.update({"VOICE_AGENT_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "agent", *args], env=full, cwd=home, capture_output=True, text=True,
                          timeout=timeout)


def status_now(port: int, base: str = "voice") -> bytes:
    """The retained availability on the broker now (a fresh client gets it first)."""
    probe = Probe(port, base=base)
    try:
        return probe.wait_topic(f"{base}/status", timeout=10)
    finally:
        probe.close()


def wait_status_after(probe: Probe, value: bytes, after: int, timeout: float = 60) -> None:
    probe.wait_for(lambda t, p: t == f"{probe.base}/status" and p == value, timeout, after)


def default_id_agent(home: Path, port: int, env: dict[str, str] | None = None) -> AgentProcess:
    """An agent with the client id it picks itself (the fixtures give every agent a random one)."""
    agent = AgentProcess(home, port, env)
    del agent.env["VOICE_AGENT_MQTT_CLIENT_ID"]
    return agent


# -- item 9: one agent per home, sessions on the broker ---------------------------------------

def test_a_second_agent_on_the_same_home_exits_and_the_first_keeps_answering(tmp_path: Path) -> None:
    """Two `make run` on one home, with the embedded broker: the second leaves the first alone."""
    home = make_home(tmp_path / "home")
    port, http = free_port(), free_port()
    env = {"VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(http)}
    first = default_id_agent(home, port, env).start()
    first.wait_log("embedded MQTT broker listening")
    first.wait_log("ready")
    second = default_id_agent(home, port, env)
    second.log = tmp_path / "second.log"
    second.start()
    assert second.process is not None
    assert second.process.wait(timeout=60) != 0
    said = second.log.read_text()
    assert "another agent runs in this home" in said and str(home) in said, said
    assert "Traceback" not in said and "connecting to MQTT broker" not in said, said
    assert status_now(port) == b"online"
    result = voice_agent(home, "say", "Still here.", "-o", str(tmp_path / "still.wav"), "--timeout", "30",
                         env={"VOICE_AGENT_MQTT_PORT": str(port)})
    assert result.returncode == 0, result.stderr
    assert_speech((tmp_path / "still.wav").read_bytes())
    assert requests.get(f"http://127.0.0.1:{http}/api/health", timeout=30).json()["status"] == "online"
    assert first.stop() == 0


@pytest.mark.parametrize("broker_kind", ["embedded", "mosquitto"])
def test_a_session_taken_over_is_noticed_and_taken_back(tmp_path: Path, broker_kind: str) -> None:
    """Another client connects with the agent's client id (and says `offline` for it, as a second
    agent that fails to start does): the agent notices, reconnects, says `online` and answers."""
    server = Mosquitto(tmp_path / "mq").start() if broker_kind == "mosquitto" else None
    port = server.port if server is not None else free_port()
    agent = AgentProcess(make_home(tmp_path / "home"), port, {"VOICE_AGENT_MQTT_KEEPALIVE": "5"})
    client_id = agent.env["VOICE_AGENT_MQTT_CLIENT_ID"]
    try:
        agent.start().wait_log("ready")
        probe = Probe(port)
        assert probe.request("default", "speak", {"text": "Before."})["status"] == "ok"
        mark = probe.mark()
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        intruder.connect("127.0.0.1", port)
        intruder.loop_start()
        intruder.publish("voice/status", "offline", qos=1, retain=True).wait_for_publish(10)
        intruder.disconnect()
        intruder.loop_stop()
        wait_status_after(probe, b"offline", mark)
        wait_status_after(probe, b"online", mark)
        agent.wait_log("reconnecting")
        response = probe.request("default", "speak", {"id": "taken-back", "text": "After the take-over."}, timeout=60)
        assert response["status"] == "ok"
        assert_speech(probe.wait_topic("voice/default/audio/taken-back"))
        assert json.loads(probe.wait_topic("voice/default/state"))["provider"] == "piper"
        probe.close()
    finally:
        assert agent.stop() == 0
        if server is not None:
            server.stop()


def test_health_says_offline_while_the_broker_is_away(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path / "mq").start()
    http = free_port()
    agent = AgentProcess(make_home(tmp_path / "home"), server.port,
                         {"VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(http)})
    health = f"http://127.0.0.1:{http}/api/health"
    try:
        agent.start().wait_log("ready")
        assert requests.get(health, timeout=30).json()["status"] == "online"
        server.stop()
        agent.wait_log("disconnected from MQTT broker")
        assert requests.get(health, timeout=30).json()["status"] == "offline"
        server.start()
        probe = Probe(server.port)
        probe.wait_topic("voice/status")  # online again: the agent is subscribed
        assert requests.get(health, timeout=30).json()["status"] == "online"
        probe.close()
    finally:
        assert agent.stop() == 0
        server.stop()


def test_agents_of_different_homes_pick_different_client_ids(tmp_path: Path, broker: Mosquitto) -> None:
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32]
    agents = [default_id_agent(make_home(tmp_path / name), broker.port, {"VOICE_AGENT_BASE_TOPIC": f"homes-{name}"})
              for name in ("one", "two")]
    try:
        ids = []
        for agent in agents:
            agent.start().wait_log("ready")
            found = re.search(r"connecting to MQTT broker \S+ as (\S+)", agent.log.read_text())
            assert found, agent.log.read_text()
            ids.append(found.group(1))
        assert ids[0] != ids[1] and all(i.startswith(f"voice-agent-{host}-") for i in ids), ids
        for name in ("one", "two"):
            probe = Probe(broker.port, base=f"homes-{name}")
            assert probe.request("default", "speak", {"text": f"Home {name}."})["status"] == "ok"
            probe.close()
        assert all("disconnected from MQTT broker" not in a.log.read_text() for a in agents)
    finally:
        for agent in agents:
            agent.stop()


# -- item 8: settings that are wrong: one line naming the setting, exit 2 -----------------------

def assert_one_line(result: subprocess.CompletedProcess[str], *wanted: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in wanted), result.stderr


@pytest.mark.parametrize("setting", ["VOICE_AGENT_MQTT_TLS_CA", "VOICE_AGENT_MQTT_TLS_CERT"])
def test_a_garbage_tls_file_is_one_line(tmp_path: Path, setting: str) -> None:
    home = make_home(tmp_path / "home")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    for command in (["run"], ["say", "Hi"]):
        result = voice_agent(home, *command, env={"VOICE_AGENT_MQTT_TLS": "true", setting: str(garbage)})
        assert_one_line(result, setting)


def test_hermes_sites_that_are_not_json_are_one_line(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    assert_one_line(voice_agent(home, "run", env={"VOICE_AGENT_HERMES_SITES": "kitchen=default"}),
                    "VOICE_AGENT_HERMES_SITES", "JSON")
    (home / "etc" / "agent.env").write_text("VOICE_AGENT_HERMES_SITES={kitchen: default}\n")
    assert_one_line(voice_agent(home, "run"), "VOICE_AGENT_HERMES_SITES", "JSON")


def test_a_bare_line_in_agent_env_stops_the_agent_naming_file_and_line(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    env_file = home / "etc" / "agent.env"
    env_file.write_text("# the broker\n\nVOICE_AGENT_MQTT_PORT=1999\nVOICE_AGENT_MQTT_HOST\n")
    assert_one_line(voice_agent(home, "run"), f"{env_file}:4", "VOICE_AGENT_MQTT_HOST", "=")
    assert_one_line(voice_agent(home, "voices"), f"{env_file}:4")


# -- item 11: the CLI -------------------------------------------------------------------------

def test_version(tmp_path: Path) -> None:
    from agent import __version__

    result = voice_agent(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"voice-agent {__version__}"


@pytest.mark.parametrize(("command", "wanted"), [
    (["say"], ["0.5", "2.0", "default: 60", "seconds", "default: default", "default: the profile's"]),
    (["samples", "list"], ["default: 50", "1-10000", "0-100", "default: created"]),
    (["samples", "export"], ["default: default", "1-10000", "0-100"]),
    (["train", "follow"], ["job id"]),
])
def test_help_gives_range_unit_and_default(tmp_path: Path, command: list[str], wanted: list[str]) -> None:
    result = voice_agent(tmp_path, *command, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert all(w in text for w in wanted), (wanted, result.stdout)


def test_no_answer_names_the_broker_it_asked(tmp_path: Path, broker: Mosquitto) -> None:
    home = make_home(tmp_path / "home")
    env = {"VOICE_AGENT_MQTT_PORT": str(broker.port), "VOICE_AGENT_BASE_TOPIC": "nobody-home"}
    said = voice_agent(home, "say", "Anyone?", "--timeout", "1", "-o", str(tmp_path / "x.wav"), env=env)
    assert said.returncode == 1 and f"127.0.0.1:{broker.port}" in said.stderr, said.stderr
    assert "nobody-home/default/request/speak" in said.stderr


def test_the_start_log_names_the_web_page(tmp_path: Path, broker: Mosquitto) -> None:
    http = free_port()
    agent = AgentProcess(make_home(tmp_path / "home"), broker.port, {
        "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(http), "VOICE_AGENT_BASE_TOPIC": f"page-{uuid.uuid4().hex[:6]}"})
    try:
        agent.start().wait_log("ready")
        assert f"web page http://127.0.0.1:{http}/ " in agent.log.read_text()
    finally:
        agent.stop()


# -- item 10: `make run` keeps the household out of the checkout --------------------------------

def fake_checkout(root: Path) -> tuple[Path, Path]:
    """The shipped files `make run` needs, and a venv whose voice-agent only reports what it got."""
    checkout = root / "checkout"
    checkout.mkdir()
    for name in ("etc", "profiles"):
        shutil.copytree(REPO / name, checkout / name, ignore=shutil.ignore_patterns("out", "logs", "agent.env"))
    shutil.copy(REPO / "pyproject.toml", checkout / "pyproject.toml")
    venv = root / "venv"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin" / "voice-agent"
    script.write_text('#!/bin/sh\necho "home=$VOICE_AGENT_HOME args=$*"\n')
    script.chmod(0o755)
    return checkout, venv


def make(checkout: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_") and not k.startswith("MAKE")}
    return subprocess.run(["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "-C", str(checkout), *args],
                          env={**full, **(env or {})}, capture_output=True, text=True, timeout=60)


def test_make_run_keeps_the_home_out_of_the_checkout(tmp_path: Path) -> None:
    checkout, venv = fake_checkout(tmp_path)
    for stamp in (".installed-run", ".installed-test"):
        (venv / stamp).touch()
    first = make(checkout, "run", f"VENV={venv}")
    assert first.returncode == 0, first.stderr
    assert f"home={checkout / 'var'} args=run" in first.stdout
    home = checkout / "var"
    assert json.loads((home / "etc" / "voice.json").read_text()) == json.loads((REPO / "etc" / "voice.json").read_text())
    assert (home / "profiles" / "default" / "etc" / "voice.json").is_file()
    (home / "etc" / "voice.json").write_text('{"household": "mine"}')
    again = make(checkout, "run", f"VENV={venv}")
    assert again.returncode == 0 and (home / "etc" / "voice.json").read_text() == '{"household": "mine"}'
    elsewhere = make(checkout, "run", f"VENV={venv}", env={"VOICE_AGENT_HOME": str(tmp_path / "elsewhere")})
    assert f"home={tmp_path / 'elsewhere'} args=run" in elsewhere.stdout
    assert (tmp_path / "elsewhere" / "etc" / "voice.json").is_file()
    ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "var/etc/voice.json", "var/etc/agent.env",
                              "var/profiles/default/etc/voice.json"], capture_output=True, text=True)
    assert ignored.returncode == 0 and len(ignored.stdout.splitlines()) == 3, ignored


def test_make_run_installs_no_test_tools_and_make_test_installs_them(tmp_path: Path) -> None:
    checkout, _ = fake_checkout(tmp_path)
    venv = tmp_path / "clean-venv"  # a clean clone: nothing installed yet
    run = make(checkout, "-n", "run", f"VENV={venv}").stdout
    test = make(checkout, "-n", "test", f"VENV={venv}").stdout
    installs = [line for line in run.splitlines() if "pip install" in line]
    assert installs and not any(",test]" in line for line in installs), run
    assert "mypy" not in run and "-m pytest" not in run
    assert any("pip install" in line and ",test]" in line for line in test.splitlines()), test
    assert "voice-agent run" in run and "-m pytest" in test and "bin/mypy" in test
    assert "make test" in (REPO / ".ci" / "run").read_text()
