"""Home Assistant MQTT discovery as an extension of the MQTT door.

What it does is translate: a message on an entity's command topic becomes one request to the
command table (through the door's router, which validates it and maps refusals to codes), and the
answer is published as the event ``hass.<command>``. The configs are published retained after
every (re)connect and whenever Home Assistant says ``online`` on ``<prefix>/status``; the voice
select's is published again when the profile's provider (or voice) changes, with the voices the
``voices`` command lists for that provider: installed ones first, then downloadable catalog
voices of the language the profile speaks (``select_options``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

from agent.core import Core
from agent.errors import ServiceError
from agent.mqtt.edge import TopicAudio
from agent.mqtt.hass.entities import GPU_STATE, Entity, HassTopics, NodeDevice, ProfileDevice, trainable
from agent.mqtt.router import Router, check_profile, model_json
from agent.mqtt.schema import Response
from agent.mqtt.topics import Topics
from agent.mqtt.transport import MqttTransport
from agent.settings import AgentSettings
from agent.voices.listing import language_code
from agent.voices.requests import VoicesRequest
from providers import registry

log = logging.getLogger(__name__)

MAX_OPTIONS = 100  # Home Assistant shows a select's options in one drop-down, values only


def command_of(object_id: str) -> str | None:
    """The command an entity's command topic calls."""
    if object_id == "speak":
        return "speak"
    if object_id in ("provider", "voice"):
        return "config.set"  # voice.json is written (validated, atomically); hot reload applies it
    if object_id in (f"train_{name}" for name in trainable()):
        return "train"
    return None


def select_options(voices: list[dict[str, Any]], provider: Any, voice: Any, limit: int = MAX_OPTIONS) -> list[str]:
    """The voice select's options: the provider's installed voices, then the catalog voices a pick
    would download, of the language family of the voice in force (of the installed voices when
    the catalog does not know it), at most ``limit`` in all: 176 Piper voices in one drop-down is
    a list nobody scrolls. An option is the voice's name as it is (Home Assistant publishes the
    option and shows the state against the options, so no "(download)" mark can be added), and
    the voice in force is always one of them."""
    mine = [v for v in voices if v.get("provider") == provider]
    installed = [str(v["name"]) for v in mine if v.get("installed", True)]
    current = [v for v in mine if v.get("name") == voice and v.get("language")]
    families = {_family(v) for v in (current or [v for v in mine if v.get("installed", True)]) if v.get("language")}
    download = [str(v["name"]) for v in mine if not v.get("installed", True) and _family(v) in families]
    options = list(dict.fromkeys(installed + download))[:limit]
    if voice is not None and str(voice) not in options:
        options = options[: limit - 1] + [str(voice)]
    return options


def _family(voice: dict[str, Any]) -> str:
    return language_code(str(voice.get("language") or "")).split("_")[0]


class HassDiscovery:
    """One device per profile in Home Assistant, its entities wired to the command table, and one
    for this agent's node (each node of the household publishes its own)."""

    def __init__(self, core: Core, settings: AgentSettings, transport: MqttTransport, topics: Topics) -> None:
        self._core = core
        self._transport = transport
        self._topics = topics
        self.hass = HassTopics(topics, settings.ha_discovery_prefix)
        self._node = settings.node
        self._router = Router(
            core.commands, self._answered, self._audio_out, core.layout.exists,
            settings.max_request_bytes, settings.max_audio_bytes,
            elsewhere=lambda profile: core.nodes.registry.home_of(profile, besides=settings.node) is not None,
        )
        self._lock = threading.Lock()
        self._announced: set[str] = set()  # profiles whose device was published since the last connect
        self._voices_for: dict[str, tuple[Any, Any]] = {}  # profile -> (provider, voice) of its voice select
        self._connected = False
        self._stopping = False
        core.state.watch(self._state_changed)

    # -- MqttExtension -------------------------------------------------------------------------
    def subscriptions(self) -> list[tuple[str, int]]:
        return [(self.hass.ha_status, 1), (self.hass.commands, 1)]

    def on_connect(self) -> None:
        """The broker may have lost what was retained: publish every device again."""
        self._connected = True
        self._announce_all()

    def on_message(self, topic: str, payload: bytes) -> bool:
        if topic == self.hass.ha_status:
            if payload.strip() == b"online":
                log.info("Home Assistant is online: publishing discovery again")
                self._announce_all()
            return True
        parsed = self.hass.parse_command(topic)
        if parsed is None:
            return False
        profile, object_id = parsed
        if self._router.at_home_elsewhere(profile):  # every node hears every profile's commands
            log.debug("%s is for profile %s, at home on another node: left to it", topic, profile)
            return True
        command = command_of(object_id)
        if command is None:
            log.warning("no Home Assistant entity %r: ignored the message on %s", object_id, topic)
            return True
        request_id = f"ha-{uuid.uuid4().hex[:10]}"
        try:
            check_profile(profile, self._core.layout.exists)
            document = self._request(profile, object_id, payload)
        except ServiceError as exc:
            log.warning("Home Assistant's %s for %s refused: %s: %s", command, profile, exc.code, exc)
            self._answered(profile, command, Response(id=request_id, status="error", code=exc.code, error=str(exc)))
            return True
        self._router.dispatch(profile, command, json.dumps({"id": request_id, **document}).encode())
        return True

    def stop(self) -> None:
        self._stopping = True

    # -- in: an entity's command -> one request -------------------------------------------------
    def _request(self, profile: str, object_id: str, payload: bytes) -> dict[str, Any]:
        """The request for the entity's command (``command_of``), from what Home Assistant sent."""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ServiceError("invalid_payload", f"the message is not UTF-8 text: {exc}") from exc
        if object_id == "speak":  # notify.send_message publishes the message as it is
            return {"text": text}
        if object_id == "provider":  # a select publishes the option chosen
            return {"changes": {"tts": {"provider": text.strip()}}}
        if object_id == "voice":  # the voice of the provider the profile speaks with
            provider = self._core.configs.get(profile).tts.provider
            settings = registry.spec(provider).settings
            key = settings.model_fields[settings.voice_field].alias or settings.voice_field
            return {"changes": {"tts": {provider: {key: text.strip()}}}}
        return {"provider": object_id.removeprefix("train_"), "speaker": "default", "when": "idle"}

    def _audio_out(self, profile: str) -> TopicAudio:
        return TopicAudio(self._transport, self._topics, profile)

    def _answered(self, profile: str, command: str, response: Response) -> None:
        """What a Home Assistant command led to, as an event: there is no requester to answer."""
        if response.status == "ok":
            log.info("Home Assistant's %s for %s: ok", command, profile)
        name = f"hass.{command}"
        document = {"type": name, "time": time.time(), "data": json.loads(model_json(response))}
        self._transport.publish(self._topics.event(profile, name), json.dumps(document), 1, False)

    # -- out: discovery configs -----------------------------------------------------------------
    def _announce_all(self) -> None:
        if self._stopping:
            return
        with self._lock:
            self._announced.clear()
            self._voices_for.clear()
        node = NodeDevice(self.hass, self._node)
        for entity in node.entities():
            self._publish_config(self.hass.config_under(entity, node.node_id), entity)
        for profile in self._core.layout.names():
            self._announce(profile)

    def _announce(self, profile: str) -> None:
        with self._lock:
            self._announced.add(profile)
        for entity in ProfileDevice(self.hass, profile, self._node).entities():
            self._publish(profile, entity)
        self._publish_voice_select(profile)

    def _state_changed(self, key: str, document: dict[str, Any]) -> None:
        """A profile that appeared while the agent runs gets its device; a new provider, new voices."""
        if not self._connected or self._stopping or key == GPU_STATE:
            return
        with self._lock:
            announced = key in self._announced
            current = self._voices_for.get(key)
        if not announced:
            if self._core.layout.exists(key):
                self._announce(key)
        elif current != (document.get("provider"), document.get("voice")):
            self._publish_voice_select(key)

    def _publish_voice_select(self, profile: str) -> None:
        state = self._core.state.get(profile)
        wanted = (state.get("provider"), state.get("voice"))
        if wanted[0] is None:
            return  # the speak path has not said which provider yet; its state change brings us back
        with self._lock:
            self._voices_for[profile] = wanted
        listed: Future[dict[str, Any]] = Future()
        try:
            request = VoicesRequest(catalog=True, provider=wanted[0]) if wanted[0] in registry.NAMES else VoicesRequest()
            result = self._core.commands["voices"].run(profile, request, self._audio_out(profile))
        except Exception as exc:  # the agent is stopping, say
            listed.set_exception(exc)
        else:
            if isinstance(result, Future):
                listed = result
            else:
                listed.set_result(result)
        listed.add_done_callback(lambda done: self._voices_listed(profile, wanted, done))

    def _voices_listed(self, profile: str, wanted: tuple[Any, Any], listed: Future[dict[str, Any]]) -> None:
        provider, voice = wanted
        error = listed.exception()
        if error is not None:  # the select still offers the voice in force: its state is one of its options
            log.warning("voices of %s for its voice select: %s", profile, error)
        options = select_options([] if error is not None else listed.result()["voices"], provider, voice)
        with self._lock:
            if self._voices_for.get(profile) != wanted:
                return  # the provider changed again meanwhile: that listing is on its way
        self._publish(profile, ProfileDevice(self.hass, profile, self._node).voice_select(options))

    def _publish(self, profile: str, entity: Entity) -> None:
        self._publish_config(self.hass.config(entity, profile), entity)

    def _publish_config(self, topic: str, entity: Entity) -> None:
        if not self._stopping:
            self._transport.publish(topic, json.dumps(entity.config, sort_keys=True), 1, True)
