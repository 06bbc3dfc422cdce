"""The agent process: start-up as a straight list of steps, then serve until a signal."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Protocol

import sdnotify

from agent import __version__, lockfile
from agent.broker import EmbeddedBroker, broker_answers, embedded_bind_address
from agent.core import Core
from agent.layout import Layout
from agent.limits import raise_open_file_limit
from agent.mqtt.edge import MqttEdge
from agent.mqtt.hass import HassDiscovery
from agent.mqtt.node import NodeDoor
from agent.settings import AgentSettings
from agent.wyoming.server import WyomingServer

log = logging.getLogger(__name__)

READY_TIMEOUT = 15.0  # seconds to wait for the broker before telling systemd we are up anyway


class Door(Protocol):
    def start(self) -> None:
        """Begin serving, or raise with the reason it cannot (the agent then does not start)."""
        ...

    def stop(self) -> None: ...


class Agent:
    """The core and its doors; ``start`` brings them up in order, ``stop`` takes them down in reverse."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.core = Core(settings)
        self.mqtt = MqttEdge(self.core, settings)
        self.core.reachable = lambda: self.mqtt.transport.connected
        if settings.ha_discovery:
            self.mqtt.add(HassDiscovery(self.core, settings, self.mqtt.transport, self.mqtt.topics))
        if settings.hermes_tts or settings.hermes_sites:
            from agent.mqtt.hermes import HermesBridge

            self.mqtt.add(HermesBridge(self.core, self.mqtt.transport, settings))
        self.node = NodeDoor(self.core, settings)
        self.doors: list[Door] = [self.node]  # besides MQTT: started after it, stopped before it
        if settings.http_enabled:
            from agent.http.server import HttpEdge

            self.doors.append(HttpEdge(self.core, settings))
        self.wyoming = WyomingServer(self.core, settings) if settings.wyoming_uri else None
        if self.wyoming is not None:
            self.doors.append(self.wyoming)
        self.embedded: EmbeddedBroker | None = None

    def start(self, stop: threading.Event) -> None:
        """Up in order, then wait for the broker (at most READY_TIMEOUT) unless ``stop`` is set first:
        a SIGTERM while the broker is away must not wait out the timeout."""
        s = self.settings
        if not broker_answers(s.mqtt_host, s.mqtt_port):
            bind = embedded_bind_address(s.mqtt_host)
            if s.embedded_broker == "auto" and bind is not None and s.broker_is_private:
                log.warning("no MQTT broker at %s:%d; not starting the embedded one: a login or TLS is configured, "
                            "so the household's broker is meant (an open one here would let anyone speak); "
                            "will keep trying", s.mqtt_host, s.mqtt_port)
            elif s.embedded_broker == "auto" and bind is not None:
                log.warning("no MQTT broker at %s:%d; starting the embedded one", s.mqtt_host, s.mqtt_port)
                self.embedded = EmbeddedBroker(bind, s.mqtt_port)
                self.embedded.start()
                log.warning("the embedded broker speaks MQTT 3.1.1 only: this agent stays a single node")
                for transport in (self.mqtt.transport, self.node.transport):
                    transport.use_mqtt311()
            else:
                log.warning("no MQTT broker answers at %s:%d yet; will keep trying", s.mqtt_host, s.mqtt_port)
        self.core.start()
        self.mqtt.start()
        for door in self.doors:
            door.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not stop.is_set() and time.monotonic() < deadline:
            if self.mqtt.wait_connected(0.1):
                page = f"; web page {page_address(s.http_host, s.http_port)} (API under /api)" if s.http_enabled else ""
                mode = "" if self.mqtt.transport.mqtt5 else ", MQTT 3.1.1: a single node"
                log.info("voice agent %s ready: profiles %s%s; node %s%s", __version__,
                         ", ".join(self.core.layout.names()) or "(none)", page, s.node, mode)
                return

    def stuck(self) -> list[str]:
        """What a restart would mend (``Core.stuck``): the watchdog is fed only when empty."""
        found = self.core.stuck()
        if self.wyoming is not None and not self.wyoming.alive:
            found.append("Wyoming server stopped")
        return found

    def stop(self) -> None:
        log.info("stopping")
        for door in reversed(self.doors):
            door.stop()
        self.core.stop()
        self.mqtt.stop()
        if self.embedded is not None:
            self.embedded.stop()


def run(settings: AgentSettings) -> int:
    """Run until SIGTERM/SIGINT, speaking systemd's notify protocol when run as a service. The
    home's lock comes first: a second agent on the same home must not touch the broker (it would
    take the first one's session) nor anything else of the home."""
    path = Layout(settings.home).agent_lock
    try:
        lock = lockfile.hold(path)
    except OSError as exc:
        log.error("cannot take the home's lock %s: %s", path, exc.strerror or exc)
        return 1
    if lock is None:
        log.error("another agent runs in this home (%s, pid %s, it holds %s): not starting. Stop it first, "
                  "or give this one a home of its own (VOICE_AGENT_HOME)", settings.home, lockfile.holder(path), path)
        return 1
    try:
        return _serve(settings)
    finally:
        lock.close()


def _serve(settings: AgentSettings) -> int:
    log.info("home %s", settings.home.absolute())
    raise_open_file_limit()  # before the doors take their caps from it
    warning = checkout_warning(settings)
    if warning:
        log.warning("%s", warning)
    notifier = sdnotify.SystemdNotifier()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent = Agent(settings)
    try:
        agent.start(stop)
    except Exception as exc:
        log.error("cannot start: %s", exc)
        agent.stop()
        return 1
    notifier.notify("READY=1")
    notifier.notify(f"STATUS=serving {len(agent.core.layout.names())} profile(s)")
    interval = watchdog_interval()
    while not stop.wait(interval):
        problems = agent.stuck()
        if problems:
            log.error("unhealthy, not feeding the watchdog: %s", "; ".join(problems))
            notifier.notify(f"STATUS=unhealthy: {'; '.join(problems)}")
        else:
            notifier.notify("WATCHDOG=1")
    notifier.notify("STOPPING=1")
    agent.stop()
    return 0


def checkout_warning(settings: AgentSettings) -> str | None:
    """Without VOICE_AGENT_HOME the home is the current directory; when that is a git checkout, the
    household's settings would be written into tracked files (``make run`` uses var/)."""
    if "home" in settings.model_fields_set or not (settings.home / ".git").exists():
        return None
    return (f"the home is the git checkout {settings.home.absolute()}: settings saved from the web page change its "
            f"files; set VOICE_AGENT_HOME (make run uses {settings.home.absolute() / 'var'})")


def page_address(host: str, port: int) -> str:
    """The web page's address as a browser takes it: a wildcard address is this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def watchdog_interval() -> float:
    """Half of systemd's WatchdogSec, or a relaxed 10 s when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else 10.0
