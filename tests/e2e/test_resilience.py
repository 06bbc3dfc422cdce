"""The agent against a broker that restarts, needs a password, or is not there at all."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow


def wait_status(probe: Probe, value: bytes, timeout: float = 30) -> None:
    probe.wait_for(lambda t, p: t == "voice/status" and p == value, timeout)


def test_reconnects_after_broker_restart(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path / "mq").start()
    agent = AgentProcess(make_home(tmp_path / "home"), server.port).start()
    try:
        agent.wait_log("ready")
        probe = Probe(server.port)
        assert probe.request("default", "speak", {"text": "Before the restart."})["status"] == "ok"
        probe.close()

        server.stop()
        agent.wait_log("disconnected from MQTT broker")
        server.start()  # same port; nothing retained survives (persistence is off)

        probe = Probe(server.port)
        wait_status(probe, b"online")  # the agent re-announced itself...
        state = json.loads(probe.wait_topic("voice/default/state"))  # ...and its retained state
        assert state["provider"] == "piper"
        node = probe.wait_for(lambda t, p: t.startswith("voice/node/") and t.endswith("/state"))  # and the node's
        assert json.loads(node[1])["status"] == "online"
        response = probe.request("default", "speak", {"id": "after-restart", "text": "After the restart."})
        assert response["status"] == "ok"  # subscriptions were restored
        assert_speech(probe.wait_topic("voice/default/audio/after-restart"))
        probe.close()
    finally:
        agent.stop()
        server.stop()


def test_password_broker_and_last_will(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path / "mq", users={"agent": "s3cret", "watcher": "w4tch"}).start()
    home = make_home(tmp_path / "home")
    wrong = AgentProcess(home, server.port, {"VOICE_AGENT_MQTT_USERNAME": "agent", "VOICE_AGENT_MQTT_PASSWORD": "nope"})
    agent = AgentProcess(home, server.port, {"VOICE_AGENT_MQTT_USERNAME": "agent", "VOICE_AGENT_MQTT_PASSWORD": "s3cret"})
    try:
        wrong.start().wait_log("refused")
        wrong.stop()

        agent.start().wait_log("ready")
        probe = Probe(server.port, username="watcher", password="w4tch")
        wait_status(probe, b"online")
        assert probe.request("default", "speak", {"text": "Authenticated."})["status"] == "ok"

        agent.stop(signal.SIGKILL)  # no clean stop: the broker publishes the last will
        wait_status(probe, b"offline")
        probe.close()
    finally:
        agent.stop()
        server.stop()


def test_clean_stop_publishes_offline(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path / "mq").start()
    agent = AgentProcess(make_home(tmp_path / "home"), server.port).start()
    try:
        agent.wait_log("ready")
        probe = Probe(server.port)
        wait_status(probe, b"online")
        assert agent.stop() == 0
        wait_status(probe, b"offline", timeout=5)
        probe.close()
    finally:
        agent.stop()
        server.stop()


def test_embedded_broker_when_none_answers(tmp_path: Path) -> None:
    port = free_port()
    agent = AgentProcess(make_home(tmp_path / "home"), port).start()
    try:
        agent.wait_log("embedded MQTT broker listening")
        agent.wait_log("ready")
        agent.wait_log("MQTT 3.1.1: a single node")  # amqtt has no MQTT 5: said, and spoken to in 3.1.1
        probe = Probe(port)
        response = probe.request("default", "speak", {"id": "embedded-1", "text": "Embedded broker."})
        assert response["status"] == "ok"
        assert_speech(probe.wait_topic("voice/default/audio/embedded-1"))
        probe.close()
    finally:
        assert agent.stop() == 0


def test_systemd_notify_ready_and_watchdog(tmp_path: Path, broker: Mosquitto) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    notify.bind(str(path))
    notify.settimeout(30)
    home = make_home(tmp_path / "home")
    agent = AgentProcess(
        home, broker.port,
        {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000", "VOICE_AGENT_BASE_TOPIC": "notifytest"},
    ).start()
    try:
        received: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ("READY=1" in received and received.count("WATCHDOG=1") >= 2):
            received.append(notify.recv(4096).decode())
        assert "READY=1" in received
        assert received.count("WATCHDOG=1") >= 2
        assert received.index("READY=1") < received.index("WATCHDOG=1")
        agent.stop()
        tail = []
        notify.settimeout(2)
        try:
            while True:
                tail.append(notify.recv(4096).decode())
        except socket.timeout:
            pass
        assert "STOPPING=1" in tail
    finally:
        agent.stop()
        notify.close()


def test_flood_gets_busy_not_an_unbounded_queue(tmp_path: Path, broker: Mosquitto) -> None:
    home = make_home(tmp_path / "home")
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_QUEUE_DEPTH": "2", "VOICE_AGENT_BASE_TOPIC": "flood"}).start()
    try:
        agent.wait_log("ready")
        probe = Probe(broker.port, base="flood")
        ids = [f"flood-{i}" for i in range(12)]
        text = "A sentence long enough to keep the worker busy for a little while."
        for i, request_id in enumerate(ids):
            probe.publish("flood/default/request/speak", json.dumps({"id": request_id, "text": f"{text} {i}"}))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(probe.responses("default", "speak")) < len(ids):
            time.sleep(0.1)
        responses = probe.responses("default", "speak")
        assert sorted(r["id"] for r in responses) == sorted(ids), "every request gets exactly one response"
        busy = [r for r in responses if r["status"] == "error"]
        assert busy and all(r["code"] == "busy" for r in busy)
        assert len(responses) - len(busy) >= 2
        probe.close()
    finally:
        agent.stop()
