"""Short-lived MQTT clients for the CLI: send one request and collect its audio and response;
follow a profile's events."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.mqtt.connect import new_client
from agent.mqtt.topics import Topics
from agent.settings import AgentSettings


@dataclass
class Reply:
    response: dict[str, Any]
    audio: bytes | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)


def request_or_report(
    settings: AgentSettings, profile: str, command: str, payload: dict[str, Any], timeout: float,
    hint: Callable[[str, dict[str, Any]], str] | None = None,
) -> Reply | None:
    """For CLI commands: the reply of an ``ok`` response, else None after printing why (and
    ``hint(code, data)``: what to run about it, in the CLI's words)."""
    import sys

    try:
        reply = RequestClient(settings).request(profile, command, payload, timeout)
    except (ConnectionError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if reply.response.get("status") != "ok":
        code, data = str(reply.response.get("code")), reply.response.get("data") or {}
        said = hint(code, data) if hint is not None and isinstance(data, dict) else ""
        print(f"error ({code}): {reply.response.get('error')}{said}", file=sys.stderr)
        return None
    return reply


def broker_address(settings: AgentSettings) -> str:
    """``host:port`` as a user would check it (``[::1]:1883`` for an IPv6 address)."""
    host = settings.mqtt_host
    return f"[{host}]:{settings.mqtt_port}" if ":" in host else f"{host}:{settings.mqtt_port}"


class RequestClient:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.topics = Topics(settings.base_topic)
        self._messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self._client = new_client(settings, f"voice-agent-cli-{uuid.uuid4().hex[:8]}")
        self._client.on_message = lambda c, u, m: self._messages.put((m.topic, bytes(m.payload)))
        self._client.on_subscribe = lambda *a: self._subscribed.set()

    def request(self, profile: str, command: str, payload: dict[str, Any], timeout: float) -> Reply:
        """Publish one request and wait for its response (and audio, for speak)."""
        request_id = payload.setdefault("id", uuid.uuid4().hex[:12])
        t = self.topics
        try:
            self._client.connect(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the MQTT broker at {self.settings.mqtt_host}:{self.settings.mqtt_port}: {exc}"
            ) from exc
        self._client.loop_start()
        try:
            self._client.subscribe(
                [(t.response(profile, command), 1), (t.audio(profile, request_id), 1), (t.audio(profile, request_id) + "/+", 1)]
            )
            if not self._subscribed.wait(timeout):
                raise TimeoutError(
                    f"the MQTT broker at {broker_address(self.settings)} did not confirm the subscription"
                )
            self._client.publish(t.request(profile, command), json.dumps(payload), qos=1)
            return self._collect(profile, command, request_id, timeout)
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def _collect(self, profile: str, command: str, request_id: str, timeout: float) -> Reply:
        t = self.topics
        reply: Reply | None = None
        audio_topic = t.audio(profile, request_id)
        audio: bytes | None = None
        chunks: dict[int, bytes] = {}
        while True:
            try:
                topic, payload = self._messages.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(
                    f"no response to {command} within {timeout:g} s: asked the MQTT broker at "
                    f"{broker_address(self.settings)} on {t.request(profile, command)} "
                    "(is the agent running, on that broker and base topic?)"
                ) from None
            if topic == t.response(profile, command):
                response = json.loads(payload)
                if response.get("id") == request_id:
                    reply = Reply(response)
            elif topic == audio_topic:
                audio = payload
            elif topic.startswith(audio_topic + "/"):
                chunks[int(topic.rsplit("/", 1)[1])] = payload
            if reply is not None:
                data = reply.response.get("data") or {}
                expected = data.get("chunks", 0) if data.get("stream") else (1 if "audio_seconds" in data else 0)
                got = len(chunks) if data.get("stream") else int(audio is not None)
                if reply.response.get("status") != "ok" or got >= expected:
                    reply.audio, reply.chunks = audio, chunks
                    return reply


class EventFollower:
    """A profile's events as they come, ``(type, data)``; subscribed before ``__enter__`` returns,
    so nothing that follows a request made inside the ``with`` block is missed."""

    def __init__(self, settings: AgentSettings, profile: str) -> None:
        self._settings = settings
        self._topic = Topics(settings.base_topic).event(profile, "+")
        self._events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._subscribed = threading.Event()
        self._client = new_client(settings, f"voice-agent-follow-{uuid.uuid4().hex[:6]}")
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()

    def __enter__(self) -> "EventFollower":
        s = self._settings
        try:
            self._client.connect(s.mqtt_host, s.mqtt_port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(f"cannot reach the MQTT broker at {s.mqtt_host}:{s.mqtt_port}: {exc}") from exc
        self._client.subscribe(self._topic, qos=1)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.__exit__()
            raise TimeoutError(f"the MQTT broker at {broker_address(s)} did not confirm the subscription")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def next(self) -> tuple[str, dict[str, Any]]:
        return self._events.get()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            document = json.loads(message.payload)
            self._events.put((str(document["type"]), dict(document.get("data") or {})))
        except (ValueError, KeyError, TypeError):
            pass
