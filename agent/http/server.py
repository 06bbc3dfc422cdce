"""The HTTP door's server: aiohttp on an event loop of its own thread, so it neither blocks nor is
blocked by the MQTT door. It is one library for HTTP and WebSocket both, with no ASGI server
beside it: the smallest well-kept way to serve both from a daemon that is not async itself."""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from agent.core import Core
from agent.http.api import Api
from agent.http.connections import CappedSite
from agent.limits import ThrottledLog, connection_cap, log_accept_failures, open_file_limit
from agent.settings import AgentSettings

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0


class HttpEdge:
    def __init__(self, core: Core, settings: AgentSettings) -> None:
        self._settings = settings
        self._api = Api(core, settings)
        self._loop = asyncio.new_event_loop()
        log_accept_failures(self._loop, ThrottledLog(log), "HTTP API")
        self._cap = connection_cap(settings.http_max_connections)
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="http", daemon=True)

    def start(self) -> None:
        """Listen, or raise ``RuntimeError`` saying why not (the port is taken, say)."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        try:
            future.result(START_TIMEOUT)
        except OSError as exc:
            s = self._settings
            raise RuntimeError(
                f"the HTTP API cannot listen on {s.http_host}:{s.http_port}: {exc.strerror or exc} "
                "(set VOICE_AGENT_HTTP_PORT, or VOICE_AGENT_HTTP_ENABLED=false)"
            ) from exc
        log.info("HTTP API on http://%s:%d/api%s", self._settings.http_host, self._settings.http_port,
                 " (token required)" if self._settings.http_token else "")
        if self._cap < self._settings.http_max_connections:
            log.warning("HTTP connections capped at %d, an eighth of the open-file limit (%d), not %d: raise "
                        "the hard limit (LimitNOFILE=, ulimit -Hn)", self._cap, open_file_limit(), self._settings.http_max_connections)

    async def _listen(self) -> None:
        self._runner = web.AppRunner(self._api.app(), access_log=None, handle_signals=False,
                                     keepalive_timeout=self._settings.http_idle_timeout)
        await self._runner.setup()
        await CappedSite(self._runner, self._settings.http_host, self._settings.http_port, self._cap).start()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(START_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=START_TIMEOUT)
