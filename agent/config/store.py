"""The voice.json in force for each profile: reloaded on change, last good kept on error."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from collections.abc import Callable
from typing import Any

from agent.config.model import (
    ConfigCheck,
    ConfigError,
    VoiceConfig,
    checked,
    deep_merge,
    load_voice_config,
    merged_config,
    read_json_object,
)
from agent.events import EventBus
from agent.layout import Layout
from providers.common.files import atomic_write_text

log = logging.getLogger(__name__)


class ConfigStore:
    def __init__(self, layout: Layout, events: EventBus, check: ConfigCheck | None = None,
                 canonical: Callable[[str, VoiceConfig], VoiceConfig] | None = None) -> None:
        """``check``: what a valid config must also pass, on every write and reload (the voices
        it names exist: agent/voices/names.py); a failure is a config error like any other.
        ``canonical``: the config as it is kept, once valid (catalog aliases made voices' names)."""
        self._layout = layout
        self._check = check
        self._canonical = canonical
        self._events = events
        self._configs: dict[str, VoiceConfig] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._writing = threading.Lock()

    def get(self, profile: str) -> VoiceConfig:
        with self._lock:
            config = self._configs.get(profile)
        if config is None:
            self.reload(profile, announce=False)
            with self._lock:
                config = self._configs.get(profile, VoiceConfig())
        return config

    def error(self, profile: str) -> str | None:
        with self._lock:
            return self._errors.get(profile)

    def errors(self) -> dict[str, str]:
        """Every profile whose voice.json is not in force, and why (``/api/health``)."""
        with self._lock:
            return dict(self._errors)

    def reload(self, profile: str, announce: bool = True) -> bool:
        """Load the profile's merged config; on error keep the last good one (or the defaults)."""
        try:
            path = self._layout.profile_config(profile)
            config = load_voice_config(self._layout.global_config, path)
            config = checked(config, profile, self._check, str(path))
            if self._canonical is not None:
                config = self._canonical(profile, config)
        except ConfigError as exc:
            with self._lock:
                self._errors[profile] = str(exc)
                has_last_good = profile in self._configs
            if not has_last_good:
                fallback = self._startup_fallback()
                with self._lock:
                    self._configs.setdefault(profile, fallback)
            self._events.emit(
                profile,
                "config.invalid",
                {"problems": [asdict(p) for p in exc.problems], "kept": "last good configuration" if has_last_good else "global voice.json or defaults"},
            )
            return False
        with self._lock:
            changed = self._configs.get(profile) != config
            self._configs[profile] = config
            self._errors.pop(profile, None)
        if announce:
            self._events.emit(profile, "config.reloaded", {"provider": config.tts.provider, "changed": changed})
        return True

    def _startup_fallback(self) -> VoiceConfig:
        """No last good config yet: the household's file alone, else the built-in defaults."""
        try:
            return load_voice_config(self._layout.global_config)
        except ConfigError:
            return VoiceConfig()

    @staticmethod
    def load_quietly(layout: Layout, profile: str) -> VoiceConfig:
        """For tools outside the agent: the profile's config, else the global one, else defaults."""
        try:
            return load_voice_config(layout.global_config, layout.profile_config(profile))
        except ConfigError:
            try:
                return load_voice_config(layout.global_config)
            except ConfigError:
                return VoiceConfig()

    def reload_all(self, announce: bool = True) -> None:
        for profile in self._layout.names():
            self.reload(profile, announce)

    def update(self, profile: str, changes: dict[str, Any]) -> VoiceConfig:
        """Merge ``changes`` into the profile's voice.json; the watcher applies it. A change that
        would not validate raises ``ConfigError`` and the file is left as it was."""
        with self._writing:
            return update_profile_file(self._layout, profile, changes, self._check)


def update_profile_file(layout: Layout, profile: str, changes: dict[str, Any], check: ConfigCheck | None = None) -> VoiceConfig:
    """The same for tools outside the agent (the CLI): written atomically, only when valid (and
    when ``check`` finds nothing wrong)."""
    path = layout.profile_config(profile)
    document = deep_merge(read_json_object(path), changes)
    config = checked(merged_config(layout.global_config, path, document), profile, check, str(path))
    atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return config
