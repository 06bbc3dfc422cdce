"""The agent process: start-up as a straight list of steps, then serve until a signal."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import sdnotify

from agent import __version__
from agent.broker import EmbeddedBroker, broker_answers, embedded_bind_address
from agent.config_store import ConfigStore
from agent.config_watch import ConfigWatcher
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.gpu.status import NvmlInfo
from agent.mqtt.router import Command, Router, model_json
from agent.mqtt.schema import EmptyRequest, Response, SpeakRequest
from agent.mqtt.topics import Topics
from agent.mqtt.transport import MqttTransport
from agent.profiles import Profiles
from agent.record.commands import RecordCommands
from agent.record.service import RecordService
from agent.record.streams import StreamSessions
from agent.settings import AgentSettings
from agent.speak.engines import ProviderPool, list_voices
from agent.speak.service import SpeakService
from agent.train.service import TrainService
from providers.sovits.commands import SovitsCommands

log = logging.getLogger(__name__)

READY_TIMEOUT = 15.0  # seconds to wait for the broker before telling systemd we are up anyway
STALL_LIMIT = 300.0  # a speak request running this long means a hung engine: let systemd restart us


class Agent:
    """Owns every component; ``start`` wires them, ``stop`` takes them down in reverse."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.topics = Topics(settings.base_topic)
        self.profiles = Profiles(settings.home)
        self.transport = MqttTransport(settings, self.topics.status)
        publish = self.transport.publish
        self.events = EventBus(publish, self.topics)
        self.state = StateBoard(publish, self.topics)
        self.configs = ConfigStore(self.profiles, self.events)
        self.arbiter = GpuArbiter(
            NvmlInfo(), HogPauser(settings.gpu_hogs, settings.home / "out" / "gpu-paused.json"),
            lambda name, data: self.events.emit("gpu", name, data),
        )
        self.engines = ProviderPool(gpu_guard=self.arbiter.reserve)
        self.speak = SpeakService(
            self.profiles, self.configs, self.engines, self.events, self.state, publish, self.topics,
            settings.queue_depth, settings.max_text_chars,
        )
        self.router = Router(self._respond, self.profiles.exists, settings.max_request_bytes)
        self.router.register("speak", Command(SpeakRequest, self.speak.submit))
        self.router.register("voices", Command(EmptyRequest, self._voices))
        self.router.register("config", Command(EmptyRequest, self._config))
        self.records = RecordService(self.profiles, self.configs, self.events, self.state, settings.record_queue_depth)
        self.record_commands = RecordCommands(self.records, self.profiles, self.configs)
        self.record_commands.register(self.router, settings.max_audio_bytes)
        self.sovits_commands = SovitsCommands(self.engines, self.configs, self.profiles, self.events)
        self.sovits_commands.register(self.router)
        self.streams = StreamSessions(self.profiles, self.records, self.events, settings.hermes_sites)
        self.train = TrainService(
            settings, self.profiles, self.configs, self.records, self.events, self.state, publish, self.arbiter,
            self.topics.gpu_state,
        )
        self.train.register(self.router)
        self.watcher = ConfigWatcher(self.profiles, self._config_changed)
        self.embedded: EmbeddedBroker | None = None

    def start(self) -> None:
        s = self.settings
        if not broker_answers(s.mqtt_host, s.mqtt_port):
            bind = embedded_bind_address(s.mqtt_host)
            if s.embedded_broker == "auto" and bind is not None:
                log.warning("no MQTT broker at %s:%d; starting the embedded one", s.mqtt_host, s.mqtt_port)
                self.embedded = EmbeddedBroker(bind, s.mqtt_port)
                self.embedded.start()
            else:
                log.warning("no MQTT broker answers at %s:%d yet; will keep trying", s.mqtt_host, s.mqtt_port)
        self.configs.reload_all(announce=False)
        for profile in self.profiles.names():
            self.speak.preload(profile)
            self.records.publish_readiness(profile)  # creates the profile's data folders
        self.watcher.start()
        self.transport.on_message(self._on_message)
        self.transport.on_connect(self.state.republish)
        self.transport.on_connect(self.train.publish_gpu_state)
        self.transport.subscribe(self.topics.requests, qos=1)
        self.transport.subscribe(self.topics.streams, qos=0)
        if self.settings.hermes_sites:
            self.transport.subscribe(self.topics.HERMES_FRAMES, qos=0)
        self.transport.start()
        self.train.start()
        if self.transport.wait_connected(READY_TIMEOUT):
            log.info("voice agent %s ready: profiles %s", __version__, ", ".join(self.profiles.names()) or "(none)")

    def problems(self) -> list[str]:
        """Why the agent cannot serve (empty when healthy); the systemd watchdog is fed only when empty."""
        found = [f"speak worker stuck or dead: {name}" for name in self.speak.stalled(STALL_LIMIT)]
        if not self.watcher.alive:
            found.append("voice.json watcher stopped")
        return found

    def stop(self) -> None:
        log.info("stopping")
        self.watcher.stop()
        self.train.stop()
        self.streams.stop()
        self.records.stop()
        self.record_commands.stop()
        self.speak.stop()
        self.sovits_commands.stop()
        self.transport.stop()
        self.engines.close()
        if self.embedded is not None:
            self.embedded.stop()

    # -- MQTT edge -------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse_request(topic)
        if parsed is not None:
            self.router.dispatch(parsed[0], parsed[1], payload)
            return
        stream = self.topics.parse_stream(topic)
        if stream is not None:
            self.streams.on_stream(*stream, payload)
            return
        site = self.topics.parse_hermes_frame(topic)
        if site is not None:
            self.streams.on_hermes_frame(site, payload)

    def _respond(self, profile: str, command: str, response: Response) -> None:
        self.transport.publish(self.topics.response(profile, command), model_json(response), 1, False)

    def _config_changed(self, profile: str | None) -> None:
        for name in [profile] if profile else self.profiles.names():
            self.configs.reload(name)
            self.speak.preload(name)

    # -- small commands ----------------------------------------------------------------------
    def _voices(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        voices, problems = list_voices(self.engines, self.profiles.provider_context(profile))
        return {"id": request.id, "voices": [v.__dict__ for v in voices], "unavailable": problems}

    def _config(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        config = self.configs.get(profile)
        return {
            "id": request.id,
            "config": config.model_dump(mode="json", by_alias=True),
            "error": self.configs.error(profile),
        }


def run(settings: AgentSettings) -> int:
    """Run until SIGTERM/SIGINT, speaking systemd's notify protocol when run as a service."""
    notifier = sdnotify.SystemdNotifier()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent = Agent(settings)
    try:
        agent.start()
    except Exception as exc:
        log.error("cannot start: %s", exc)
        agent.stop()
        return 1
    notifier.notify("READY=1")
    notifier.notify(f"STATUS=serving {len(agent.profiles.names())} profile(s)")
    interval = watchdog_interval()
    while not stop.wait(interval):
        problems = agent.problems()
        if problems:
            log.error("unhealthy, not feeding the watchdog: %s", "; ".join(problems))
            notifier.notify(f"STATUS=unhealthy: {'; '.join(problems)}")
        else:
            notifier.notify("WATCHDOG=1")
    notifier.notify("STOPPING=1")
    agent.stop()
    return 0


def watchdog_interval() -> float:
    """Half of systemd's WatchdogSec, or a relaxed 10 s when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else 10.0
