"""The MQTT door: requests under ``<base>/+/request/+`` into the command table, audio and
responses back, events and state documents published as they happen, streams and Hermes
satellites' microphone frames into the record path. Other conventions spoken over the same
connection (Home Assistant discovery, Hermes TTS) are extensions of this door.

paho's network thread only hands messages on: one thread of this edge parses and validates
them in arrival order (a 32 MiB recording decodes there, not on the network thread), and the
extensions' messages are handled there too.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from agent.core import Core
from agent.mqtt.router import Router, model_json
from agent.mqtt.schema import Response
from agent.mqtt.topics import Topics
from agent.mqtt.transport import MqttTransport
from agent.settings import AgentSettings

log = logging.getLogger(__name__)

INBOX_DEPTH = 256  # requests waiting to be parsed; more are answered "busy"


@dataclass(frozen=True)
class _Request:
    profile: str
    command: str
    payload: bytes


@dataclass(frozen=True)
class _Message:  # for an extension
    topic: str
    payload: bytes


class MqttExtension(Protocol):
    """A convention spoken over the agent's MQTT connection."""

    def subscriptions(self) -> list[tuple[str, int]]: ...

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Handle the message if it is one of ours (on the edge's thread); False when it is not."""
        ...

    def on_connect(self) -> None:
        """After every (re)connect: publish what must be retained."""
        ...

    def stop(self) -> None: ...


class TopicAudio:
    """A profile's speak audio on ``<base>/<profile>/audio/<id>[/<seq>]`` (WAV, QoS 1, not retained)."""

    def __init__(self, transport: MqttTransport, topics: Topics, profile: str) -> None:
        self._transport = transport
        self._topics = topics
        self._profile = profile

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None:
        self._transport.publish(self._topics.audio(self._profile, request_id, seq), wav, 1, False)

    def whole(self, request_id: str, wav: bytes) -> None:
        self._transport.publish(self._topics.audio(self._profile, request_id), wav, 1, False)

    def where(self, request_id: str, stream: bool) -> str:
        topic = self._topics.audio(self._profile, request_id)
        return f"{topic}/+" if stream else topic


class MqttEdge:
    def __init__(self, core: Core, settings: AgentSettings) -> None:
        self._core = core
        self.topics = Topics(settings.base_topic)
        self.transport = MqttTransport(settings, self.topics.status)
        self.router = Router(
            core.commands, self._respond, lambda profile: TopicAudio(self.transport, self.topics, profile),
            core.layout.exists, settings.max_request_bytes, settings.max_audio_bytes,
            elsewhere=lambda profile: core.nodes.registry.home_of(profile, besides=settings.node) is not None,
        )
        self._hermes = bool(settings.hermes_sites)
        self.extensions: list[MqttExtension] = []
        self._inbox: queue.Queue[_Request | _Message | None] = queue.Queue(maxsize=INBOX_DEPTH)
        self._worker = threading.Thread(target=self._work, name="mqtt-requests", daemon=True)

    def add(self, extension: MqttExtension) -> None:
        """Before ``start``."""
        self.extensions.append(extension)

    def start(self) -> None:
        self._core.events.listen(self._publish_event)
        self._core.state.watch(self._publish_state)
        self.transport.on_message(self._on_message)
        self.transport.on_connect(self._republish_state)
        self.transport.subscribe(self.topics.requests, qos=1)
        self.transport.subscribe(self.topics.streams, qos=0)
        if self._hermes:
            self.transport.subscribe(self.topics.HERMES_FRAMES, qos=0)
        for extension in self.extensions:
            for topic, qos in extension.subscriptions():
                self.transport.subscribe(topic, qos)
            self.transport.on_connect(extension.on_connect)
        self._worker.start()
        self.transport.start()

    def wait_connected(self, timeout: float) -> bool:
        return self.transport.wait_connected(timeout)

    def stop(self) -> None:
        self._inbox.put(None)
        self._worker.join(timeout=10)
        for extension in self.extensions:
            extension.stop()
        self.transport.stop()

    # -- in ------------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        """paho's network thread: hand on, never block."""
        parsed = self.topics.parse_request(topic)
        if parsed is not None:
            try:
                self._inbox.put_nowait(_Request(parsed[0], parsed[1], payload))
            except queue.Full:
                self._respond(parsed[0], parsed[1], Response(id=None, status="error", code="busy",
                                                             error="too many requests are waiting; try again later"))
            return
        stream = self.topics.parse_stream(topic)
        if stream is not None:
            self._core.streams.on_stream(*stream, payload)
            return
        site = self.topics.parse_hermes_frame(topic)
        if site is not None:
            self._core.streams.on_hermes_frame(site, payload)
            return
        if self.extensions:
            try:
                self._inbox.put_nowait(_Message(topic, payload))
            except queue.Full:
                log.warning("dropped a message on %s: the MQTT edge is backed up", topic)

    def _work(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            if isinstance(item, _Request):
                self.router.dispatch(item.profile, item.command, item.payload)
                continue
            for extension in self.extensions:
                try:
                    if extension.on_message(item.topic, item.payload):
                        break
                except Exception:
                    log.exception("handling %s failed", item.topic)

    # -- out -----------------------------------------------------------------------------------
    def _respond(self, profile: str, command: str, response: Response) -> None:
        self.transport.publish(self.topics.response(profile, command), model_json(response), 1, False)

    def _publish_event(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        payload = json.dumps({"type": name, "time": when, "data": data})
        self.transport.publish(self.topics.event(profile, name), payload, 1, False)

    def _publish_state(self, key: str, document: dict[str, Any]) -> None:
        self.transport.publish(self.topics.state(key), json.dumps(document, sort_keys=True), 1, True)

    def _republish_state(self) -> None:
        """After a (re)connect: the broker may have lost retained messages."""
        for key, document in self._core.state.snapshot().items():
            self._publish_state(key, document)
