"""The GPT-SoVITS server's extra commands (``sovits.start|restart|stop|status|logs``) and the
events it announces. The agent runs each on a thread of its own: they wait on child processes."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from providers.settings_base import InputModel, ProviderSettings
from providers.sovits.config import SovitsSettings
from providers.sovits.engine import SovitsProvider
from providers.sovits.servers import is_same_host, log_path, tail
from providers.spec import ActionContext, ActionSpec, Announce


class NoParams(InputModel):
    """No parameters (the base of the actions' parameters)."""


class StartParams(NoParams):
    wait: bool = Field(True, description="Answer once the server answers (or failed), not right after starting it.")


class LogsParams(NoParams):
    lines: int = Field(50, ge=1, le=1000, description="How many of the last lines.")


def _parts(action: ActionContext) -> tuple[SovitsProvider, SovitsSettings]:
    assert isinstance(action.engine, SovitsProvider) and isinstance(action.settings, SovitsSettings)
    return action.engine, action.settings


def start(action: ActionContext, params: StartParams) -> dict[str, Any]:
    engine, settings = _parts(action)
    return {"server": engine.servers.start(settings, action.ctx, params.wait)}


def restart(action: ActionContext, params: StartParams) -> dict[str, Any]:
    engine, settings = _parts(action)
    return {"server": engine.servers.restart(settings, action.ctx, params.wait)}


def stop(action: ActionContext, params: NoParams) -> dict[str, Any]:
    engine, settings = _parts(action)
    return {"server": engine.servers.stop(settings)}


def status(action: ActionContext, params: NoParams) -> dict[str, Any]:
    engine, settings = _parts(action)
    return {"server": engine.servers.status(settings, action.ctx)}


def logs(action: ActionContext, params: LogsParams) -> dict[str, Any]:
    path = log_path(action.ctx.run_dir)
    return {"log": str(path), "lines": tail(path, params.lines)}


ACTIONS = (
    ActionSpec("start", StartParams, start, "start the server and wait until it answers"),
    ActionSpec("restart", StartParams, restart, "stop, then start"),
    ActionSpec("stop", NoParams, stop, "stop the server the agent started"),
    ActionSpec("status", NoParams, status, "is it running, since when, how often it was restarted"),
    ActionSpec("logs", LogsParams, logs, "the server's last log lines"),
)


def watch(engine: Any, announce: Announce) -> None:
    """``sovits.server`` for every profile whose settings point at a server that changed state."""
    assert isinstance(engine, SovitsProvider)

    def on_status(status: dict[str, Any]) -> None:
        host, _, port = str(status["url"]).removeprefix("http://").rpartition(":")

        def concerns(settings: ProviderSettings) -> bool:
            return isinstance(settings, SovitsSettings) and str(settings.port) == port and is_same_host(settings.host, host)

        announce("sovits.server", {k: status[k] for k in ("state", "url", "pid", "restarts", "error")}, concerns)

    engine.servers.listen(on_status)
