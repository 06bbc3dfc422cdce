"""Stand-ins for the MQTT door's in-process tests: a transport that keeps what is published (with
its QoS and retain flag), and a core whose commands keep each request and answer with a Future
the test settles itself (so the door's callbacks run on the test's thread, where mutmut maps them)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

from agent.commands import Command
from agent.events import StateBoard
from agent.nodes.registry import NodeRegistry
from agent.requests import ConfigSetRequest, Request
from agent.speak.requests import SpeakRequest
from agent.train.requests import TrainRequest
from agent.voices.requests import VoicesRequest

WAIT = 10  # seconds before a test gives up waiting for a publish (never reached when it works)


class Published(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Any = None  # MQTT 5 PUBLISH properties (``request_properties``), when given

    def json(self) -> Any:
        return json.loads(self.payload)


class Transport:
    """What the door publishes, in order."""

    def __init__(self) -> None:
        self.sent: list[Published] = []
        self._changed = threading.Condition()

    @property
    def published(self) -> list[tuple[str, bytes]]:
        return [(p.topic, p.payload) for p in self.sent]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, properties: Any = None) -> None:
        with self._changed:
            data = payload.encode() if isinstance(payload, str) else payload
            self.sent.append(Published(topic, data, qos, retain, properties))
            self._changed.notify_all()

    def on(self, topic: str) -> list[Published]:
        return [p for p in self.sent if p.topic == topic]

    def wait_for(self, topic: str, timeout: float = WAIT) -> Published:
        """The first message on ``topic``, waiting for it (published from another thread)."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.on(topic), timeout), f"nothing was published on {topic}"
            return self.on(topic)[0]


class NodeTransport(Transport):
    """The node door's side of ``MqttTransport``: subscriptions in order, whether it is connected and
    took MQTT 5, its start and stop, and the handler that gets each message with its properties."""

    def __init__(self, connected: bool = True, mqtt5: bool = True) -> None:
        super().__init__()
        self.connected = connected
        self.mqtt5 = mqtt5
        self.subscribed: list[tuple[str, int]] = []
        self.calls: list[str] = []  # "subscribe", "start", "stop", in order
        self.handler: Any = None

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.subscribed.append((topic, qos))
        self.calls.append("subscribe")

    def on_message_meta(self, handler: Any) -> None:
        self.handler = handler

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


@dataclass
class Called:
    """One command call: its profile, its validated request, where its audio goes, and its answer."""

    profile: str
    request: Any
    out: Any
    answer: Future[dict[str, Any]] = field(default_factory=Future)


class Commands:
    """The commands the MQTT extensions call, each keeping its calls; ``refuse`` makes one raise."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Called]] = {}
        self.refuse: dict[str, Exception] = {}

    def table(self) -> dict[str, Command]:
        models: dict[str, type[Request]] = {"speak": SpeakRequest, "voices": VoicesRequest, "config.set": ConfigSetRequest, "train": TrainRequest}
        return {name: Command(model, self._runner(name)) for name, model in models.items()}

    def _runner(self, name: str) -> Any:
        def run(profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
            if name in self.refuse:
                raise self.refuse[name]
            called = Called(profile, request, out)
            self.calls.setdefault(name, []).append(called)
            return called.answer

        return run

    def only(self, name: str) -> Called:
        (called,) = self.calls.get(name, [])
        return called


class Streams:
    """The record path's side of Hermes: what the satellites' recognition and playback told it."""

    def __init__(self) -> None:
        self.asr: list[tuple[str, str, str]] = []
        self.own: list[tuple[str, str]] = []  # ("started" | "finished", key)
        self.own_speech = SimpleNamespace(started=lambda key: self.own.append(("started", key)),
                                          finished=lambda key: self.own.append(("finished", key)))

    def on_hermes_asr(self, site: str, event: str, text: str = "") -> None:
        self.asr.append((site, event, text))


def mqtt_core(profiles: dict[str, str] | None = None) -> Any:
    """A core of ``profiles`` (name -> the provider its voice.json speaks with; default: ``default``
    with piper), its commands in ``core.calls``."""
    providers = {"default": "piper"} if profiles is None else profiles
    commands = Commands()
    return SimpleNamespace(
        calls=commands, commands=commands.table(), state=StateBoard(), streams=Streams(), providers=providers,
        layout=SimpleNamespace(exists=lambda name: name in providers, names=lambda: list(providers)),
        configs=SimpleNamespace(get=lambda name: SimpleNamespace(tts=SimpleNamespace(provider=providers[name]))),
        nodes=SimpleNamespace(registry=NodeRegistry()),  # the household's other nodes, as the test says they are
    )
