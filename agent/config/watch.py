"""Reload voice.json the moment it changes (watchdog/inotify), coalescing editor bursts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from agent.layout import Layout
from providers.common.names import is_plain_name

log = logging.getLogger(__name__)

GLOBAL = ""  # scope key for etc/voice.json, which affects every profile
SETTLE_SECONDS = 0.1  # editors write, truncate and rename in quick succession


class ConfigWatcher(FileSystemEventHandler):
    def __init__(self, layout: Layout, on_change: Callable[[str | None], None]) -> None:
        """``on_change(profile)``; ``None`` means the global file changed."""
        self._layout = layout
        self._on_change = on_change
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()
        self._observer = Observer()

    def start(self) -> None:
        etc = self._layout.global_config.parent
        etc.mkdir(parents=True, exist_ok=True)
        self._layout.profiles_root.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(self, str(etc), recursive=False)
        self._observer.schedule(self, str(self._layout.profiles_root), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    @property
    def alive(self) -> bool:
        return self._observer.is_alive()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            scope = self._scope(Path(str(raw))) if raw else None
            if scope is not None:
                self._schedule(scope)

    def _scope(self, path: Path) -> str | None:
        if path.name != "voice.json":
            return None
        if path == self._layout.global_config:
            return GLOBAL
        try:
            rel = path.relative_to(self._layout.profiles_root)
        except ValueError:
            return None
        if len(rel.parts) == 3 and rel.parts[1] == "etc" and is_plain_name(rel.parts[0]):
            return rel.parts[0]
        return None

    def _schedule(self, scope: str) -> None:
        with self._lock:
            old = self._timers.pop(scope, None)
            if old is not None:
                old.cancel()
            timer = threading.Timer(SETTLE_SECONDS, self._fire, args=(scope,))
            timer.daemon = True
            self._timers[scope] = timer
            timer.start()

    def _fire(self, scope: str) -> None:
        with self._lock:
            self._timers.pop(scope, None)
        log.info("voice.json changed: %s", scope or "global")
        try:
            self._on_change(scope or None)
        except Exception:
            log.exception("reloading voice.json failed")
