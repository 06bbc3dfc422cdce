"""What happens and what is: events (``speak.finished``, ``training.progress``, ...) and each
profile's state document, kept in-process. Edges listen: the MQTT edge publishes them, the
scheduler's idle detection reads events; a listener that fails is logged, the others go on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

EventListener = Callable[[str, str, dict[str, Any], float], None]  # profile, name, data, unix time
StateListener = Callable[[str, dict[str, Any]], None]  # key (a profile, or "gpu"), the whole document


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[EventListener] = []
        self._lock = threading.Lock()

    def listen(self, listener: EventListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def emit(self, profile: str, name: str, data: dict[str, Any]) -> None:
        level = logging.WARNING if name.endswith((".failed", ".invalid", ".fallback")) else logging.INFO
        log.log(level, "event %s/%s %s", profile, name, data)
        when = time.time()
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(profile, name, data, when)
            except Exception:
                log.exception("event listener failed on %s", name)


class StateBoard:
    """The state documents by key (each profile, and ``gpu``); components update their own fields."""

    def __init__(self) -> None:
        self._states: dict[str, dict[str, Any]] = {}
        self._listeners: list[StateListener] = []
        self._lock = threading.Lock()
        self._telling = threading.RLock()  # listeners hear changes in order, each of the newest document

    def watch(self, listener: StateListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def update(self, key: str, **fields: Any) -> None:
        """Merge ``fields`` into the document; listeners hear of it only when something changed."""
        with self._lock:
            state = self._states.setdefault(key, {})
            if fields.keys() <= state.keys() and all(state[k] == v for k, v in fields.items()):
                return
            state.update(fields)
        self._changed(key)

    def replace(self, key: str, document: dict[str, Any]) -> None:
        with self._lock:
            if self._states.get(key) == document:
                return
            self._states[key] = dict(document)
        self._changed(key)

    def get(self, key: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._states.get(key, {}))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {key: dict(state) for key, state in self._states.items()}

    def _changed(self, key: str) -> None:
        with self._telling:
            document = self.get(key)
            with self._lock:
                listeners = list(self._listeners)
            for listener in listeners:
                try:
                    listener(key, document)
                except Exception:
                    log.exception("state listener failed on %s", key)
