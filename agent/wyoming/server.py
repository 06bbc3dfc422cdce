"""The Wyoming server: its own thread and asyncio loop, so neither the MQTT door nor the speak
workers wait on it. ``start`` returns once it listens, or raises with the reason it cannot
(an address in use, a bad URI, the library missing): the agent then refuses to start. Each
client is a ``connection.Connection`` under the door's cap (``limits``); failed accepts (out of
descriptors) are logged once per interval, not as a traceback a second."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from functools import partial
from typing import Any
from urllib.parse import urlparse

from agent.core import Core
from agent.settings import AgentSettings
from agent.limits import ThrottledLog, connection_cap, log_accept_failures
from agent.wyoming.limits import MAX_CONNECTIONS, ConnectionGate

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class WyomingServer:
    def __init__(self, core: Core, settings: AgentSettings) -> None:
        self._core = core
        self.uri = settings.wyoming_uri
        self._zeroconf = settings.wyoming_zeroconf
        self._max_text_chars = settings.max_text_chars
        self._download_on_demand = settings.voice_download_on_demand
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wyoming", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"Wyoming server did not start listening on {self.uri} within {START_TIMEOUT:.0f} s")
        if self._failure is not None:
            raise self._failure

    @property
    def alive(self) -> bool:
        """Still serving (the agent's watchdog is not fed once it is not)."""
        return self._failure is None and self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop has ended already
                pass
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)

    # -- the server's thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:
            if not self._ready.is_set():
                self._fail(RuntimeError(f"Wyoming server failed to start: {type(exc).__name__}: {exc}"))
            else:
                log.exception("Wyoming server stopped")

    async def _serve(self) -> None:
        try:
            from wyoming.server import AsyncServer

            from agent.wyoming.connection import Connection
            from agent.wyoming.handler import DoorContext, TtsHandler
        except ImportError as exc:
            return self._fail(RuntimeError(f"the Wyoming door needs the wyoming extra: pip install 'voice-agent[wyoming]' ({exc})"))
        if urlparse(self.uri).scheme not in ("tcp", "unix"):
            return self._fail(RuntimeError(f"VOICE_AGENT_WYOMING_URI {self.uri!r} must be tcp://<host>:<port> or unix://<path>"))
        try:
            server = AsyncServer.from_uri(self.uri)
        except ValueError as exc:
            return self._fail(RuntimeError(f"VOICE_AGENT_WYOMING_URI {self.uri!r} is not usable: {exc}"))
        door = DoorContext(self._core.commands, self._core.layout.names, self._core.layout.exists, self._max_text_chars,
                           self._download_on_demand)
        gate = ConnectionGate(connection_cap(MAX_CONNECTIONS), ThrottledLog(log))
        log_accept_failures(asyncio.get_running_loop(), ThrottledLog(log), "Wyoming server")
        try:
            await server.start(partial(Connection, gate, partial(TtsHandler, door)))
        except OSError as exc:
            return self._fail(RuntimeError(f"Wyoming server cannot listen on {self.uri}: {_reason(exc)}"))
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        advert = await self._advertise()
        self._ready.set()
        log.info("Wyoming TTS server listening on %s", self.uri)
        try:
            await self._stop.wait()
        finally:
            if advert is not None:
                await advert.close()
            await server.stop()

    async def _advertise(self) -> Any:
        """Zeroconf, when asked for; the server works without it, so a failure is only logged."""
        if not self._zeroconf:
            return None
        parsed = urlparse(self.uri)
        if parsed.scheme != "tcp" or parsed.port is None:
            log.warning("zeroconf needs a tcp:// Wyoming URI; %s is not announced", self.uri)
            return None
        try:
            from agent.wyoming.advertise import Advertisement

            advert = Advertisement(parsed.hostname or "", parsed.port)
            await advert.start()
            return advert
        except Exception as exc:
            log.warning("could not announce the Wyoming server over zeroconf: %s", exc)
            return None

    def _fail(self, failure: Exception) -> None:
        self._failure = failure
        self._ready.set()


def _reason(exc: OSError) -> str:
    """``address already in use`` rather than asyncio's ``[Errno 98] error while attempting...``."""
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    return str(exc)
