"""Shared fixtures: a private Mosquitto, an agent home, the real agent as a subprocess, a probe client."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.mosquitto import Mosquitto, free_port
from tests.piper_split_seed import seed_split

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield server
    server.stop()


def make_home(root: Path, profiles: tuple[str, ...] = ("default",)) -> Path:
    """An agent home like the repo's: etc/voice.json plus profiles/<name>/etc/voice.json."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "etc" / "voice.json", root / "etc" / "voice.json")
    for name in profiles:
        target = root / "profiles" / name / "etc"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "profiles" / "default" / "etc" / "voice.json", target / "voice.json")
    seed_split(root / "out" / "models")
    return root


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def garbled_voicepack(home: Path, profile: str, name: str) -> None:
    """A Kokoro voice that is there by name but cannot be read: the engine fails, not the name."""
    folder = home / "profiles" / profile / "out" / "voices" / "kokoro"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.npy").write_bytes(b"not a numpy file")


class AgentProcess:
    """``python -m agent run`` with its own home and broker; stdout+stderr go to ``log``."""

    def __init__(self, home: Path, port: int, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = port
        self.log = home / "agent.log"
        self.env = {
            **os.environ,
            "VOICE_AGENT_HOME": str(home),
            "VOICE_AGENT_MQTT_PORT": str(port),
            "VOICE_AGENT_MQTT_CLIENT_ID": f"agent-{uuid.uuid4().hex[:6]}",
            "VOICE_AGENT_HTTP_ENABLED": "false",  # the HTTP tests give their agent a free port
            "VOICE_AGENT_HERMES_TTS": "false",  # hermes/tts/say has no base topic: only the Hermes tests' agent answers it
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log_from = 0

    running: "set[AgentProcess]" = set()  # every agent not stopped yet, for the leak guard below
    nofile: tuple[int, int] | None = None  # the agent's (soft, hard) open-file limit, as a LimitNOFILE would set it

    def start(self) -> "AgentProcess":
        handle = open(self.log, "ab")
        self._log_from = handle.tell()  # wait_log reads this run's lines: a restart's "ready" is not the last run's
        limit = self.nofile
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent", "run"], cwd=self.home, env=self.env, stdout=handle, stderr=handle,
            preexec_fn=None if limit is None else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit),
        )
        AgentProcess.running.add(self)
        return self

    def wait_log(self, text: str, timeout: float = 30) -> None:
        if text == "ready":  # the agent's own line, not any log line that happens to contain "ready"
            text = "ready: profiles"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_bytes()[self._log_from:].decode(errors="replace"):
                return
            if self.process and self.process.poll() is not None:
                raise AssertionError(f"agent exited ({self.process.returncode}):\n{self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"agent log never showed {text!r}:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """The exit code; -9 when it had to be killed after ``timeout`` seconds."""
        assert self.process is not None
        AgentProcess.running.discard(self)
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(autouse=True)
def no_agent_outlives_its_test() -> Iterator[None]:
    """An agent a test starts itself and does not stop (because an assertion failed first) would go on
    answering on the shared broker and fail the tests after it: stop it with its test. Agents of
    module fixtures started before this fixture and are left to their own teardown."""
    before = set(AgentProcess.running)
    yield
    for leaked in AgentProcess.running - before:
        leaked.stop(signal.SIGKILL)


class Probe:
    """A plain paho client that records everything under the base topic."""

    def __init__(self, port: int, base: str = "voice", username: str | None = None, password: str | None = None) -> None:
        self.port = port
        self.base = base
        self.seen: list[tuple[str, bytes, bool]] = []
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{base}/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # hinted int; paho waits any seconds
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "probe could not connect and subscribe"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = (msg.topic, bytes(msg.payload), bool(msg.retain))
        with self._arrived:
            self.seen.append(item)
            self._arrived.notify_all()

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def mark(self) -> int:
        """How many messages were seen so far: ``wait_for(..., after=mark)`` waits for a newer one."""
        with self._lock:
            return len(self.seen)

    def wait_for(self, predicate: Callable[[str, bytes], bool], timeout: float = 30, after: int = 0) -> tuple[str, bytes]:
        """The first message (seen before, after the first ``after`` ones, or arriving later) that matches."""
        deadline = time.monotonic() + timeout
        index = after
        with self._arrived:
            while True:
                while index < len(self.seen):
                    topic, payload, _ = self.seen[index]
                    index += 1
                    if predicate(topic, payload):
                        return topic, payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("timed out waiting for a message")
                self._arrived.wait(remaining)

    def wait_topic(self, topic: str, timeout: float = 30) -> bytes:
        return self.wait_for(lambda t, _: t == topic, timeout)[1]

    def event(self, profile: str, name: str, request_id: str | None = None, timeout: float = 30, after: int = 0) -> dict[str, Any]:
        topic = f"{self.base}/{profile}/event/{name}"

        def match(t: str, p: bytes) -> bool:
            return t == topic and (request_id is None or json.loads(p)["data"].get("id") == request_id)

        return json.loads(self.wait_for(match, timeout, after)[1])

    def responses(self, profile: str, command: str) -> list[dict[str, Any]]:
        return self.documents(f"{self.base}/{profile}/response/{command}")

    def documents(self, topic: str) -> list[dict[str, Any]]:
        """The JSON documents seen on ``topic`` so far, in order."""
        with self._lock:
            return [json.loads(p) for t, p, _ in self.seen if t == topic]

    def request(
        self, profile: str, command: str, payload: dict[str, Any] | bytes | str, timeout: float = 60
    ) -> dict[str, Any]:
        """Publish a request and return the response that echoes its id (or, for raw payloads, the next one)."""
        response_topic = f"{self.base}/{profile}/response/{command}"
        if isinstance(payload, dict):
            payload = {"id": uuid.uuid4().hex[:10], **payload}
            wanted: str | None = payload["id"]
            raw: bytes | str = json.dumps(payload)
        else:
            wanted, raw = None, payload
            with self._lock:
                already = sum(1 for t, _, _ in self.seen if t == response_topic)
        self.publish(f"{self.base}/{profile}/request/{command}", raw)
        if wanted is not None:
            return json.loads(
                self.wait_for(lambda t, p: t == response_topic and json.loads(p).get("id") == wanted, timeout)[1]
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.responses(profile, command)
            if len(found) > already:
                return found[already]
            time.sleep(0.02)
        raise AssertionError(f"no response on {response_topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def running_agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    """One agent shared by a test module (starting one costs about two seconds)."""
    home = make_home(tmp_path_factory.mktemp("home"), profiles=("default", "kitchen"))
    agent = AgentProcess(home, broker.port).start()
    agent.wait_log("ready")
    yield agent
    agent.stop()


@pytest.fixture()
def probe(request: pytest.FixtureRequest, broker: Mosquitto) -> Iterator[Probe]:
    """A client on the test module's own base topic (its ``BASE``, else ``voice``)."""
    client = Probe(broker.port, base=getattr(request.module, "BASE", "voice"))
    yield client
    client.close()


__all__ = ["AgentProcess", "Probe", "make_home", "write_json", "free_port"]
