"""The providers' extra commands (``sovits.start`` and the like, from the registry): each runs
on its own thread, since they wait on child processes, and reaches the pool's engine. Events an
engine announces go to the profiles whose settings it concerns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus
from agent.layout import Layout
from agent.speak.engines import ProviderPool
from agent.work import BoundedExecutor
from providers import registry
from providers.base import Provider, ProviderError
from providers.settings_base import ProviderSettings
from providers.spec import ActionContext, ActionSpec, Announce

log = logging.getLogger(__name__)


class ProviderActions:
    def __init__(self, engines: ProviderPool, configs: ConfigStore, layout: Layout, events: EventBus, depth: int = 16) -> None:
        self._engines = engines
        self._configs = configs
        self._layout = layout
        self._events = events
        self._executor = BoundedExecutor("provider-action", 4, depth)

    def run(self, provider: str, action: ActionSpec, profile: str, params: Any) -> Future[dict[str, Any]]:
        return self._executor.submit(self._run, provider, action, profile, params)

    def _run(self, provider: str, action: ActionSpec, profile: str, params: Any) -> dict[str, Any]:
        settings = self._configs.get(profile).tts.settings_for(provider)
        context = ActionContext(self._engines.get(provider), settings, self._layout.provider_context(profile))
        try:
            return action.run(context, params)
        except ProviderError as exc:
            raise ServiceError(exc.code, str(exc)) from exc

    def on_engine(self, name: str, engine: Provider) -> None:
        """ProviderPool's hook: let the spec watch its new engine."""
        watch = registry.spec(name).watch
        if watch is not None:
            watch(engine, self._announcer(name))

    def _announcer(self, provider: str) -> Announce:
        def announce(name: str, data: dict[str, Any], concerns: Callable[[ProviderSettings], bool]) -> None:
            for profile in self._layout.names():
                if concerns(self._configs.get(profile).tts.settings_for(provider)):
                    self._events.emit(profile, name, data)

        return announce

    def stop(self) -> None:
        self._executor.shutdown(wait=True)
