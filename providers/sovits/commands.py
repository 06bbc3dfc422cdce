"""``sovits.*`` MQTT commands: start, stop, restart, inspect the GPT-SoVITS server of a profile's
``tts.sovits`` settings. Server work waits on child processes, so it runs on its own threads."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pydantic import Field

from agent.config_store import ConfigStore
from agent.events import EventBus
from agent.mqtt.router import Command, RequestError, Router
from agent.mqtt.schema import EmptyRequest, Request
from agent.profiles import Profiles
from agent.speak.engines import ProviderPool
from providers.base import ProviderError
from providers.sovits.config import SovitsSettings
from providers.sovits.engine import SovitsProvider
from providers.sovits.servers import ServerManager, is_same_host, log_path, tail


class StartRequest(Request):
    wait: bool = Field(True, description="Answer once the server answers (or failed), not right after starting it.")


class LogsRequest(Request):
    lines: int = Field(50, ge=1, le=1000, description="How many of the last lines.")


class SovitsCommands:
    def __init__(self, engines: ProviderPool, configs: ConfigStore, profiles: Profiles, events: EventBus) -> None:
        self._engines = engines
        self._configs = configs
        self._profiles = profiles
        self._events = events
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sovits-server")

    def register(self, router: Router) -> None:
        self._servers().listen(self._announce)
        router.register("sovits.start", Command(StartRequest, self._later(self._start)))
        router.register("sovits.restart", Command(StartRequest, self._later(self._restart)))
        router.register("sovits.stop", Command(EmptyRequest, self._later(self._stop)))
        router.register("sovits.status", Command(EmptyRequest, self._later(self._status)))
        router.register("sovits.logs", Command(LogsRequest, self._later(self._logs)))

    def stop(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _later(self, handler: Callable[[str, Any], dict[str, Any]]) -> Callable[[str, Any], Future[dict[str, Any]]]:
        def run(profile: str, request: Any) -> dict[str, Any]:
            try:
                return handler(profile, request)
            except ProviderError as exc:
                raise RequestError(exc.code, str(exc)) from exc

        return lambda profile, request: self._executor.submit(run, profile, request)

    def _servers(self) -> ServerManager:
        provider = self._engines.get("sovits")  # the one instance that speaks also runs the servers
        if not isinstance(provider, SovitsProvider):
            raise RequestError("provider_unavailable", "the GPT-SoVITS provider is not available in this agent")
        return provider.servers

    def _settings(self, profile: str) -> SovitsSettings:
        return self._configs.get(profile).tts.sovits

    def _start(self, profile: str, request: StartRequest) -> dict[str, Any]:
        server = self._servers().start(self._settings(profile), self._profiles.home, request.wait)
        return {"id": request.id, "server": server}

    def _restart(self, profile: str, request: StartRequest) -> dict[str, Any]:
        server = self._servers().restart(self._settings(profile), self._profiles.home, request.wait)
        return {"id": request.id, "server": server}

    def _stop(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        return {"id": request.id, "server": self._servers().stop(self._settings(profile))}

    def _status(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        return {"id": request.id, "server": self._servers().status(self._settings(profile), self._profiles.home)}

    def _logs(self, profile: str, request: LogsRequest) -> dict[str, Any]:
        path = log_path(self._profiles.home)
        return {"id": request.id, "log": str(path), "lines": tail(path, request.lines)}

    def _announce(self, status: dict[str, Any]) -> None:
        """``sovits.server`` event for every profile whose settings point at this server."""
        host, _, port = status["url"].removeprefix("http://").rpartition(":")
        for profile in self._profiles.names():
            settings = self._settings(profile)
            if str(settings.port) == port and is_same_host(settings.host, host):
                self._events.emit(profile, "sovits.server", {k: status[k] for k in ("state", "url", "pid", "restarts", "error")})
