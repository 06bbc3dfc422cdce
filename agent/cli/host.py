"""What a provider's CLI asks of the agent (``providers.spec.CliHost``): the profile's context
and settings, a command answered by the running agent, training through the job runner, and a
validated change to the profile's voice.json."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from agent.config.model import ConfigError
from agent.config.store import ConfigStore, update_profile_file
from agent.layout import Layout
from agent.settings import AgentSettings
from providers.base import ProviderContext
from providers.settings_base import ProviderSettings
from providers.spec import CliError, TrainOutcome


class AgentHost:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.layout = Layout(settings.home)

    def context(self, profile: str) -> ProviderContext:
        self._check(profile)
        return self.layout.provider_context(profile)

    def provider_settings(self, profile: str, provider: str) -> ProviderSettings:
        return ConfigStore.load_quietly(self.layout, profile).tts.settings_for(provider)

    def request(self, profile: str, command: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        from agent.mqtt.client import RequestClient

        try:
            reply = RequestClient(self.settings).request(profile, command, payload, timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise CliError(str(exc)) from exc
        response = reply.response
        if response.get("status") != "ok":
            raise CliError(f"({response.get('code')}) {response.get('error')}")
        return dict(response.get("data") or {})

    def train(self, profile: str, provider: str, speaker: str, params: dict[str, Any], dataset: Path | None) -> TrainOutcome:
        from agent.cli.train import train_and_follow

        self._check(profile)
        return train_and_follow(self.settings, profile, provider, speaker, params, dataset)

    def update_voice_config(self, profile: str, changes: dict[str, Any]) -> None:
        self._check(profile)
        try:
            update_profile_file(self.layout, profile, changes)
        except ConfigError as exc:
            raise CliError(str(exc)) from exc

    def _check(self, profile: str) -> None:
        if not self.layout.exists(profile):
            raise CliError(f"no profile {profile!r} under {self.layout.profiles_root}")


def existing_layout(settings: AgentSettings, profile: str) -> Layout | None:
    """The home's layout when ``profile`` is one of its profiles, else None after saying so."""
    layout = Layout(settings.home)
    if not layout.exists(profile):
        print(f"error: no profile {profile!r} under {layout.profiles_root}", file=sys.stderr)
        return None
    return layout
