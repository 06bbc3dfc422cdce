"""What Home Assistant sees of a profile, and of the agent node it lives on: a device each and
their entities, as discovery configs.

Every config of a device carries the same ``device`` and ``origin``; its ``availability`` is the
node's own retained state (``<base>/node/<node>/state``, whose last will is ``offline``), not
``<base>/status``, which every node of a household shares. States come from the agent's retained
documents (``<base>/<profile>/state``, the node's state) through value templates, commands go to
``<base>/<profile>/hass/<object>``. Full key names throughout, as Home Assistant's MQTT
documentation spells them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from agent import __version__
from agent.mqtt.topics import Topics
from providers import registry

GPU_STATE = "gpu"  # the state document the GPU arbitration keeps beside the profiles'


@dataclass(frozen=True)
class Entity:
    component: str  # notify, select, sensor, button, binary_sensor
    object_id: str
    config: dict[str, Any]


@dataclass(frozen=True)
class HassTopics:
    """Discovery topics under Home Assistant's prefix; the entities' command topics under the base."""

    topics: Topics
    prefix: str

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth message (``online`` when it starts): discovery is published again."""
        return f"{self.prefix}/status"

    @property
    def commands(self) -> str:
        return f"{self.topics.base}/+/hass/+"

    def command(self, profile: str, object_id: str) -> str:
        return f"{self.topics.base}/{profile}/hass/{object_id}"

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """(profile, object id) of a command topic, else None."""
        prefix = self.topics.base + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 3 or parts[1] != "hass":
            return None
        return parts[0], parts[2]

    def node(self, profile: str) -> str:
        """The discovery node id of a profile's device: the base topic (two agents on one broker
        have different ones) and the profile."""
        return f"{_plain(self.topics.base)}_{profile}"

    def agent_node(self, node: str) -> str:
        """The discovery node id of an agent node's device. A node name may hold a dot, which the id
        may not: such a name gets a short hash of itself, so ``desk.lan`` and ``desk_lan`` differ."""
        plain = _plain(node)
        if plain != node:
            plain = f"{plain}-{hashlib.sha256(node.encode()).hexdigest()[:6]}"
        return f"{_plain(self.topics.base)}_node_{plain}"

    def config(self, entity: Entity, profile: str) -> str:
        return self.config_under(entity, self.node(profile))

    def config_under(self, entity: Entity, node_id: str) -> str:
        return f"{self.prefix}/{entity.component}/{node_id}/{entity.object_id}/config"


def _plain(name: str) -> str:
    """What a discovery topic's node id may hold: letters, digits, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


# -- value templates (Home Assistant renders them with Jinja; a field not there yet is a default) --
def _field(name: str, default: str = "0") -> str:
    return "{{ value_json." + name + " | default(" + default + ") }}"


def _readiness(provider: str) -> str:
    return (
        "{% set r = (value_json.readiness | default({}))['" + provider + "'] | default({}) %}"
        "{{ 'ready' if r.ready | default(false) else 'not_ready' }}"
    )


def _readiness_attributes(provider: str) -> str:
    return "{{ (value_json.readiness | default({}))['" + provider + "'] | default({}) | tojson }}"


TRAINING_PERCENT = (
    "{% set t = value_json.training | default({}) %}"
    "{% set step = t.step | default(0) %}{% set total = t.total | default(0) %}"
    "{{ (100 * step / total) | round(1) if step is number and total else 0 }}"
)
TRAINING_ATTRIBUTES = "{{ value_json.training | default({}) | tojson }}"
SPEAKING = "{{ 'ON' if value_json.queue_depth | default(0) > 0 else 'OFF' }}"
GPU = "{{ 'available' if value_json.gpus | default([]) else 'no_gpu' }}"  # of the profile's node's state
GPU_ATTRIBUTES = "{{ {'gpus': value_json.gpus | default([]), 'reason': value_json.gpu_reason | default('')} | tojson }}"
NODE_ONLINE = "{{ 'ON' if value_json.status | default('offline') == 'online' else 'OFF' }}"
NODE_FREE_VRAM = "{% set g = value_json.gpus | default([]) %}{{ g | map(attribute='free_mb') | max if g else 0 }}"
NODE_MEMORY = "{{ (value_json.memory | default({})).available_mb | default(0) }}"


def _queue(name: str) -> str:
    return "{{ (value_json.queues | default({})).%s | default(0) }}" % name


def trainable() -> list[str]:
    """Providers with a trainer: a "train" button each."""
    return [spec.name for spec in registry.SPECS if spec.trainer is not None]


def with_dataset() -> list[str]:
    """Providers that learn from (or speak from) the samples: a readiness sensor each."""
    return [spec.name for spec in registry.SPECS if spec.dataset is not None]


def node_availability(hass: HassTopics, node: str) -> list[dict[str, str]]:
    """Available while the node's own state says ``online``: ``<base>/status`` is every node's
    (each has it as its last will), so with several nodes it says whichever spoke last."""
    return [{"topic": hass.topics.node_state(node), "value_template": "{{ value_json.status }}",
             "payload_available": "online", "payload_not_available": "offline"}]


def _device_of_node(hass: HassTopics, node: str) -> dict[str, Any]:
    return {"identifiers": [f"voice_agent_{hass.agent_node(node)}"], "name": f"Voice agent node {node}",
            "model": "voice-agent node", "manufacturer": "voice-agent", "sw_version": __version__}


class NodeDevice:
    """The discovery configs of an agent node's device: is it online, what it has free, its queues.
    Each node publishes its own (its state document, ``<base>/node/<node>/state``, is the source:
    its last will turns "Online" off); a profile's device is reached "via" the node it lives on."""

    def __init__(self, hass: HassTopics, node: str) -> None:
        self._hass = hass
        self._node = node
        self._state = hass.topics.node_state(node)

    @property
    def node_id(self) -> str:
        return self._hass.agent_node(self._node)

    def entities(self) -> list[Entity]:
        state = self._state
        return [
            self._entity("binary_sensor", "online", "Online", device_class="connectivity", payload_on="ON",
                         payload_off="OFF", state_topic=state, value_template=NODE_ONLINE,
                         json_attributes_topic=state),  # always available: "offline" is what it shows
            *[
                self._entity(component, object_id, name, available=True, state_topic=state, **keys)
                for component, object_id, name, keys in (
                    ("sensor", "free_vram", "Free GPU memory", {
                        "device_class": "data_size", "unit_of_measurement": "MB", "state_class": "measurement",
                        "value_template": NODE_FREE_VRAM, "icon": "mdi:expansion-card"}),
                    ("sensor", "memory_available", "Memory available", {
                        "device_class": "data_size", "unit_of_measurement": "MB", "state_class": "measurement",
                        "value_template": NODE_MEMORY, "entity_category": "diagnostic"}),
                    ("sensor", "speak_queue", "Speak queue", {
                        "state_class": "measurement", "value_template": _queue("speak"), "icon": "mdi:account-voice"}),
                    ("sensor", "train_queue", "Training jobs", {
                        "state_class": "measurement", "value_template": _queue("train"), "icon": "mdi:school"}),
                )
            ],
        ]

    def _entity(self, component: str, object_id: str, name: str, available: bool = False, **keys: Any) -> Entity:
        config: dict[str, Any] = {
            "unique_id": f"voice_agent_{self.node_id}_{object_id}",
            "name": name,
            "device": _device_of_node(self._hass, self._node),
            "origin": {"name": "voice-agent", "sw_version": __version__},
            "qos": 1,
        }
        if available:
            config["availability"] = node_availability(self._hass, self._node)
        config.update(keys)
        return Entity(component, object_id, config)


class ProfileDevice:
    """The discovery configs of one profile's device, reached via its node's device."""

    def __init__(self, hass: HassTopics, profile: str, node: str) -> None:
        self._hass = hass
        self._profile = profile
        self._node = node
        self._state = hass.topics.state(profile)

    def entities(self) -> list[Entity]:
        """Every entity but the voice select, whose options need the core's voice list."""
        state = self._state
        found = [
            self._entity("notify", "speak", "Speak", icon="mdi:account-voice"),
            self._entity("select", "provider", "Provider", icon="mdi:robot-happy", options=list(registry.NAMES),
                         state_topic=state, value_template="{{ value_json.provider }}"),
            self._entity("sensor", "samples", "Samples kept", icon="mdi:waveform", state_class="measurement",
                         state_topic=state, value_template=_field("samples")),
            self._entity("sensor", "sample_minutes", "Minutes of samples", device_class="duration",
                         unit_of_measurement="min", state_class="measurement", suggested_display_precision=1,
                         state_topic=state, value_template=_field("sample_minutes")),
            *[
                self._entity("sensor", f"readiness_{name}", f"Readiness {name}", device_class="enum",
                             options=["ready", "not_ready"], entity_category="diagnostic",
                             state_topic=state, value_template=_readiness(name),
                             json_attributes_topic=state, json_attributes_template=_readiness_attributes(name))
                for name in with_dataset()
            ],
            self._entity("sensor", "training", "Training progress", icon="mdi:school", unit_of_measurement="%",
                         state_class="measurement", state_topic=state, value_template=TRAINING_PERCENT,
                         json_attributes_topic=state, json_attributes_template=TRAINING_ATTRIBUTES),
            self._entity("sensor", "gpu", "GPU", icon="mdi:expansion-card", device_class="enum",
                         options=["available", "no_gpu"], entity_category="diagnostic",
                         state_topic=self._hass.topics.node_state(self._node), value_template=GPU,
                         json_attributes_topic=self._hass.topics.node_state(self._node),
                         json_attributes_template=GPU_ATTRIBUTES),
            *[
                self._entity("button", f"train_{name}", f"Train {name}", icon="mdi:school", payload_press="PRESS")
                for name in trainable()
            ],
            self._entity("binary_sensor", "speaking", "Speaking", icon="mdi:account-voice",
                         state_topic=state, value_template=SPEAKING, payload_on="ON", payload_off="OFF"),
        ]
        return found

    def voice_select(self, options: list[str]) -> Entity:
        return self._entity("select", "voice", "Voice", icon="mdi:account-music", options=options,
                            state_topic=self._state, value_template="{{ value_json.voice }}")

    def _entity(self, component: str, object_id: str, name: str, **keys: Any) -> Entity:
        hass, profile = self._hass, self._profile
        config: dict[str, Any] = {
            "unique_id": f"voice_agent_{hass.node(profile)}_{object_id}",
            "name": name,
            "device": {
                "identifiers": [f"voice_agent_{hass.node(profile)}"],
                "name": f"Voice agent {profile}",
                "model": "voice-agent profile",
                "manufacturer": "voice-agent",
                "sw_version": __version__,
                "via_device": f"voice_agent_{hass.agent_node(self._node)}",
            },
            "origin": {"name": "voice-agent", "sw_version": __version__},
            "availability": node_availability(hass, self._node),
            "qos": 1,
        }
        if component in ("notify", "select", "button"):
            config["command_topic"] = hass.command(profile, object_id)
        config.update(keys)
        return Entity(component, object_id, config)
