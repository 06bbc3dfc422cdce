"""A household of several machines for the end-to-end tests: real agents, each with its own home
and HTTP port, on one Mosquitto. ``Household`` is the usual one: node A (home-server) keeps the
profiles, worker B (gpu-desktop) keeps none of them; a test module furnishes A's home and names
what else it needs (environment, logins, more nodes) and keeps its own requests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.mosquitto import Mosquitto, free_port

TOKEN = "household-token-" + "x" * 16
CONFIG_TIMEOUT = 20  # a reloaded voice.json is heard within a poll or two, on a busy 2-core machine too


def start_node(home: Path, broker: Mosquitto, node: str, **env: str) -> tuple[AgentProcess, str]:
    """The agent of node ``node`` on ``home`` as it is, started, and the URL of its HTTP door."""
    port = free_port()
    agent = AgentProcess(home, broker.port, {
        "VOICE_AGENT_NODE": node, "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port),
        "VOICE_AGENT_HTTP_TOKEN": TOKEN, "VOICE_AGENT_HA_DISCOVERY": "false", **env})
    return agent.start(), f"http://127.0.0.1:{port}"


def node_agent(root: Path, broker: Mosquitto, node: str, profiles: tuple[str, ...] = ("default",),
               **env: str) -> tuple[AgentProcess, str]:
    """A node with a fresh home of ``profiles`` under ``root``, started."""
    return start_node(make_home(root, profiles), broker, node, **env)


def get(url: str, token: str | None = TOKEN) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def nodes_at(url: str) -> dict[str, dict[str, Any]]:
    status, body = get(f"{url}/api/nodes")
    assert status == 200
    return {node["node"]: node for node in json.loads(body)["nodes"]}


def wait_nodes(url: str, check: Any, timeout: float = 30) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = nodes_at(url)
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"the nodes never became as expected: {found}")
        time.sleep(0.2)


def online(*nodes: str) -> Callable[[dict[str, dict[str, Any]]], bool]:
    """A ``wait_nodes`` check: each of ``nodes`` is listed and online."""
    return lambda found: all(found.get(node, {}).get("online") for node in nodes)


class Household:
    """Node A (home-server, with ``profiles``) and worker B (gpu-desktop, profile ``office``), each
    started with ``env`` (and ``home_env``/``desk_env``), and a probe on the broker. A subclass puts
    what A keeps in place in ``furnish``, before A starts."""

    profiles: tuple[str, ...] = ("default",)

    def __init__(self, root: Path, broker: Mosquitto | None = None, probe: dict[str, str] | None = None,
                 env: dict[str, str] | None = None, home_env: dict[str, str] | None = None,
                 desk_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.broker = broker if broker is not None else Mosquitto(root / "mq").start()
        home = make_home(root / "a", self.profiles)
        self.furnish(home)
        self.home, self.home_url = start_node(home, self.broker, "home-server", **(env or {}), **(home_env or {}))
        self.desk, self.desk_url = node_agent(root / "b", self.broker, "gpu-desktop", ("office",),
                                              VOICE_AGENT_WORKER="true", **(env or {}), **(desk_env or {}))
        self.agents = [self.home, self.desk]
        self.probe = Probe(self.broker.port, **(probe or {}))

    def furnish(self, home: Path) -> None:
        """What A keeps (models, voice.json) put in place before it starts; nothing here."""

    @property
    def profile(self) -> Path:
        return self.home.home / "profiles" / "default"

    def ready(self) -> None:
        """Each agent has started and A lists each other node online."""
        for agent in self.agents:
            agent.wait_log("ready")
        others = [agent.env["VOICE_AGENT_NODE"] for agent in self.agents if agent is not self.home]
        wait_nodes(self.home_url, online(*others))

    def join(self, root: Path, node: str, profiles: tuple[str, ...], **env: str) -> AgentProcess:
        """Another worker, started, ready and online at A; the caller stops it."""
        agent, _ = node_agent(root, self.broker, node, profiles, VOICE_AGENT_WORKER="true", **env)
        agent.wait_log("ready")
        wait_nodes(self.home_url, online(node))
        return agent

    def restart(self, agent: AgentProcess) -> None:
        """A node brought back (after a kill): ready, and online at A again."""
        agent.start().wait_log("ready")
        wait_nodes(self.home_url, online(agent.env["VOICE_AGENT_NODE"]))

    def configure(self, voices: dict[str, dict[str, Any]]) -> None:
        """Each named profile's voice.json on A rewritten, and A's reload of each seen."""
        mark = self.probe.mark()
        for profile, document in voices.items():
            write_json(self.home.home / "profiles" / profile / "etc" / "voice.json", document)
        for profile in voices:
            self.probe.event(profile, "config.reloaded", timeout=CONFIG_TIMEOUT, after=mark)

    def event(self, name: str, job: str, timeout: float = 60,
              check: Callable[[dict[str, Any]], bool] = lambda data: True) -> dict[str, Any]:
        """The data of the first event ``name`` of training job ``job`` on the default profile that
        passes ``check``."""
        def match(topic: str, payload: bytes) -> bool:
            if topic != f"voice/default/event/{name}":
                return False
            data = json.loads(payload)["data"]
            return bool(data["job"] == job and check(data))

        return json.loads(self.probe.wait_for(match, timeout)[1])["data"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.probe.close()
        for agent in self.agents:
            agent.stop()
        self.broker.stop()


H = TypeVar("H", bound=Household)


@contextmanager
def running(household: H) -> Iterator[H]:
    """``household`` once ready, stopped afterwards whatever happened (a module fixture's body)."""
    try:
        household.ready()
        yield household
    finally:
        household.stop()
