"""The event stream: every event goes to MQTT (``<base>/<profile>/event/<name>``), the log,
and any in-process listener (the scheduler's idle detection, for one)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.mqtt.topics import Topics

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes | str, int, bool], None]
Listener = Callable[[str, str, dict[str, Any]], None]


class EventBus:
    def __init__(self, publish: Publish, topics: Topics) -> None:
        self._publish = publish
        self._topics = topics
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def emit(self, profile: str, name: str, data: dict[str, Any]) -> None:
        level = logging.WARNING if name.endswith((".failed", ".invalid", ".fallback")) else logging.INFO
        log.log(level, "event %s/%s %s", profile, name, data)
        payload = json.dumps({"type": name, "time": time.time(), "data": data})
        self._publish(self._topics.event(profile, name), payload, 1, False)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(profile, name, data)
            except Exception:
                log.exception("event listener failed on %s", name)


class StateBoard:
    """The retained ``<base>/<profile>/state`` documents; components update their own keys."""

    def __init__(self, publish: Publish, topics: Topics) -> None:
        self._publish = publish
        self._topics = topics
        self._states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def update(self, profile: str, **fields: Any) -> None:
        with self._lock:
            state = self._states.setdefault(profile, {})
            if all(state.get(k) == v for k, v in fields.items()) and fields.keys() <= state.keys():
                return
            state.update(fields)
            payload = json.dumps(state, sort_keys=True)
        self._publish(self._topics.state(profile), payload, 1, True)

    def get(self, profile: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._states.get(profile, {}))

    def republish(self) -> None:
        """After a reconnect: the broker may have lost retained messages."""
        with self._lock:
            snapshot = {p: json.dumps(s, sort_keys=True) for p, s in self._states.items()}
        for profile, payload in snapshot.items():
            self._publish(self._topics.state(profile), payload, 1, True)
