"""The GPT-SoVITS servers this agent runs: one supervisor per server address, built from
``tts.sovits`` (installDir, python, serverArgs, serverUrl)."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

from providers.base import ProviderContext, ProviderUnavailableError
from providers.sovits.config import SovitsSettings
from providers.sovits.supervisor import Listener, RestartPolicy, ServerCommand, ServerSupervisor, answers

log = logging.getLogger(__name__)

LOG_NAME = "sovits-server.log"


class ServerConfigError(ProviderUnavailableError):
    """The server cannot be started as configured; the message says which setting to fix."""


def log_path(run_dir: Path) -> Path:
    return run_dir / LOG_NAME


def is_local(host: str) -> bool:
    """True when ``host`` names this machine (an address we could listen on)."""
    host = host.strip("[]")
    if host in ("localhost", "0.0.0.0", "::"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for family, _, _, _, address in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((address[0], 0))
            return True
        except OSError:
            continue
    return False


def server_command(settings: SovitsSettings, home: Path) -> ServerCommand:
    """The command line that starts the configured server, checked before anything runs."""
    if not is_local(settings.host):
        raise ServerConfigError(
            f"tts.sovits.serverUrl {settings.base_url} is another machine: the agent starts servers only on its own; "
            "start GPT-SoVITS there (api_v2.py -a 0.0.0.0 -p PORT)"
        )
    install = Path(settings.install_dir).expanduser()
    install = install if install.is_absolute() else home / install
    if not install.is_dir():
        raise ServerConfigError(
            f"GPT-SoVITS is not installed in {install}: run `voice-agent sovits install`, "
            "or set tts.sovits.installDir to your checkout"
        )
    python = _interpreter(settings.python, install)
    args = settings.server_argv()
    if args and args[0].endswith(".py") and not (install / args[0]).is_file() and not Path(args[0]).is_absolute():
        raise ServerConfigError(
            f"{install / args[0]} does not exist: is {install} a GPT-SoVITS checkout? (tts.sovits.installDir, serverArgs)"
        )
    host = "127.0.0.1" if settings.host.strip("[]") in ("0.0.0.0", "localhost") else settings.host.strip("[]")
    if host == "::":
        host = "::1"
    return ServerCommand((python, *args), install, host, settings.port, settings.start_timeout)


def _interpreter(python: str, install: Path) -> str:
    if "/" not in python:
        found = shutil.which(python)
        if found is None:
            raise ServerConfigError(f"tts.sovits.python {python!r} is not on PATH: give the path of GPT-SoVITS' Python")
        return found
    path = Path(python).expanduser()
    path = path if path.is_absolute() else install / path
    if not path.is_file():
        raise ServerConfigError(
            f"GPT-SoVITS' Python {path} does not exist: create its environment (`voice-agent sovits install`) "
            "or set tts.sovits.python"
        )
    return str(path)


class ServerManager:
    """Supervisors by address. A changed command takes effect at the next start (or restart)."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self._policy = policy or RestartPolicy()
        self._supervisors: dict[tuple[str, int], ServerSupervisor] = {}
        self._listeners: list[Listener] = []
        self._held: set[int] = set()  # ports stopped by a person: autoStart leaves them stopped
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def supervisor(self, settings: SovitsSettings, ctx: ProviderContext) -> ServerSupervisor:
        command = server_command(settings, ctx.home)
        key = (command.host, command.port)
        with self._lock:
            current = self._supervisors.get(key)
            if current is not None and (current.active or current.command == command):
                if current.command != command:
                    log.warning("GPT-SoVITS server at %s runs an older command; `sovits restart` applies the new one", command.url)
                return current
            supervisor = ServerSupervisor(command, log_path(ctx.run_dir), self._notify, self._policy)
            self._supervisors[key] = supervisor
            return supervisor

    def known(self, settings: SovitsSettings) -> ServerSupervisor | None:
        with self._lock:
            for (_, port), supervisor in self._supervisors.items():
                if port == settings.port and is_same_host(supervisor.command.host, settings.host):
                    return supervisor
        return None

    def start(self, settings: SovitsSettings, ctx: ProviderContext, wait: bool) -> dict[str, Any]:
        supervisor = self.supervisor(settings, ctx)
        with self._lock:
            self._held.discard(settings.port)
        supervisor.start()
        if wait and not supervisor.wait_ready(settings.start_timeout + 5):
            status = supervisor.status()
            raise ProviderUnavailableError(
                f"GPT-SoVITS server at {settings.base_url} did not come up ({status['state']}"
                f"{': ' + status['error'] if status['error'] else ''}): see {supervisor.log_path}"
            )
        return supervisor.status()

    def stop(self, settings: SovitsSettings) -> dict[str, Any]:
        supervisor = self.known(settings)
        if supervisor is None:
            return self.status(settings, None)
        if supervisor.state == "external":
            raise ProviderUnavailableError(
                f"the GPT-SoVITS server at {settings.base_url} was not started by this agent: stop it where it runs"
            )
        with self._lock:
            self._held.add(settings.port)
        supervisor.stop()
        return supervisor.status()

    def restart(self, settings: SovitsSettings, ctx: ProviderContext, wait: bool) -> dict[str, Any]:
        current = self.known(settings)
        if current is not None and current.state != "external":
            current.stop()
        return self.start(settings, ctx, wait)

    def status(self, settings: SovitsSettings, ctx: ProviderContext | None) -> dict[str, Any]:
        supervisor = self.known(settings)
        if supervisor is not None and supervisor.state != "stopped":
            return supervisor.status()
        state = "external" if answers(settings.host.strip("[]"), settings.port, timeout=1.0) else "stopped"
        found: dict[str, Any] = {"state": state, "url": settings.base_url, "pid": None, "restarts": 0}
        if supervisor is not None:
            found = {**supervisor.status(), "state": state}
        elif ctx is not None:
            found["log"] = str(log_path(ctx.run_dir))
        return found

    def ensure_started(self, settings: SovitsSettings, ctx: ProviderContext) -> ServerSupervisor:
        """autoStart: supervise the server unless it failed, was stopped by hand, or something
        else already serves that address."""
        supervisor = self.supervisor(settings, ctx)
        with self._lock:
            held = settings.port in self._held
        if not held and not supervisor.active and supervisor.state != "failed":
            supervisor.start()
        return supervisor

    def stop_all(self) -> None:
        with self._lock:
            supervisors, self._supervisors = list(self._supervisors.values()), {}
        for supervisor in supervisors:
            supervisor.stop()

    def _notify(self, status: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(status)


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a log (read from the end: the log may be large)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            block = min(size, max(4096, lines * 400))
            while True:
                handle.seek(size - block)
                data = handle.read(block)
                if data.count(b"\n") > lines or block == size:
                    break
                block = min(size, block * 4)
    except FileNotFoundError:
        return []
    return [line.decode("utf-8", "replace") for line in data.splitlines()[-lines:]]


def is_same_host(a: str, b: str) -> bool:
    local = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "::"}
    a, b = a.strip("[]"), b.strip("[]")
    return a == b or (a in local and b in local)
