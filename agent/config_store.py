"""The voice.json in force for each profile: reloaded on change, last good kept on error."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict

from agent.events import EventBus
from agent.profiles import Profiles
from agent.voice_config import ConfigError, VoiceConfig, load_voice_config

log = logging.getLogger(__name__)


class ConfigStore:
    def __init__(self, profiles: Profiles, events: EventBus) -> None:
        self._profiles = profiles
        self._events = events
        self._configs: dict[str, VoiceConfig] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

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

    def reload(self, profile: str, announce: bool = True) -> bool:
        """Load the profile's merged config; on error keep the last good one (or the defaults)."""
        try:
            config = load_voice_config(self._profiles.global_config, self._profiles.config_path(profile))
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
            return load_voice_config(self._profiles.global_config)
        except ConfigError:
            return VoiceConfig()

    @staticmethod
    def load_quietly(profiles: Profiles, profile: str) -> VoiceConfig:
        """For tools outside the agent: the profile's config, else the global one, else defaults."""
        try:
            return load_voice_config(profiles.global_config, profiles.config_path(profile))
        except ConfigError:
            try:
                return load_voice_config(profiles.global_config)
            except ConfigError:
                return VoiceConfig()

    def reload_all(self, announce: bool = True) -> None:
        for profile in self._profiles.names():
            self.reload(profile, announce)
