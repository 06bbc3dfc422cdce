"""What Home Assistant reads of a profile (agent/mqtt/hass/entities.py): every discovery config
key for key, as Home Assistant's MQTT documentation spells them (hass_discovery.json, reviewed
by hand: a misspelt key or a lost unit is silently ignored by Home Assistant), and the value
templates rendered with Jinja against the agent's state documents, as Home Assistant renders
them, missing fields included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest

from agent import __version__
from agent.mqtt.hass.entities import HassTopics, NodeDevice, ProfileDevice, trainable, with_dataset
from agent.mqtt.topics import Topics
from agent.nodes.state import GpuCard, Memory, NodeState, Queues

EXPECTED = Path(__file__).with_name("hass_discovery.json")


def configs() -> dict[str, dict[str, Any]]:
    device = ProfileDevice(HassTopics(Topics("voice"), "homeassistant"), "default", "box")
    entities = [*device.entities(), device.voice_select(["piper:amy", "kokoro:af_heart"])]
    return {f"{e.component}/{e.object_id}": e.config for e in entities}


def test_every_discovery_config_is_as_home_assistant_reads_it() -> None:
    expected = json.loads(EXPECTED.read_text().replace('"<version>"', json.dumps(__version__)))
    assert configs() == expected


def test_each_trainer_has_a_button_and_each_dataset_a_readiness_sensor() -> None:
    assert "kokoro" in trainable() and "piper" not in trainable()  # Piper has no trainer here
    assert "sovits" in with_dataset() and "piper" not in with_dataset()  # GPT-SoVITS speaks from the samples
    found = configs()
    assert {f"button/train_{name}" for name in trainable()} <= set(found)
    assert {f"sensor/readiness_{name}" for name in with_dataset()} <= set(found)


def render(template: str, document: dict[str, Any]) -> str:
    environment = jinja2.Environment()
    environment.filters["tojson"] = lambda value: json.dumps(value)
    return environment.from_string(template).render(value_json=document).strip()


STATE = {"provider": "kokoro", "voice": "af_heart", "samples": 12, "sample_minutes": 3.5, "queue_depth": 2,
         "training": {"step": 25, "total": 200, "provider": "kokoro"},
         "readiness": {name: {"ready": True, "why": "enough"} for name in with_dataset()}}


@pytest.mark.parametrize(("key", "document", "shown"), [
    ("select/provider", STATE, "kokoro"),
    ("select/voice", STATE, "af_heart"),
    ("sensor/samples", STATE, "12"),
    ("sensor/samples", {}, "0"),
    ("sensor/sample_minutes", STATE, "3.5"),
    ("sensor/sample_minutes", {}, "0"),
    ("sensor/training", STATE, "12.5"),
    ("sensor/training", {"training": {"step": 1, "total": 0}}, "0"),
    ("sensor/training", {"training": {"step": "x", "total": 3}}, "0"),
    ("sensor/training", {}, "0"),
    ("binary_sensor/speaking", STATE, "ON"),
    ("binary_sensor/speaking", {"queue_depth": 0}, "OFF"),
    ("binary_sensor/speaking", {}, "OFF"),
    ("sensor/gpu", {"gpus": [{"index": 0, "free_mb": 900}]}, "available"),  # the node's state
    ("sensor/gpu", {"gpus": [], "gpu_reason": "NVML is not installed"}, "no_gpu"),
    ("sensor/gpu", {}, "no_gpu"),
])
def test_each_value_template_shows_the_state(key: str, document: dict[str, Any], shown: str) -> None:
    assert render(configs()[key]["value_template"], document) == shown


def test_readiness_shows_each_providers_own_and_its_details() -> None:
    found = configs()
    for name in with_dataset():
        sensor = found[f"sensor/readiness_{name}"]
        assert render(sensor["value_template"], STATE) == "ready"
        others = {"readiness": {n: {"ready": n != name} for n in with_dataset()}}
        assert render(sensor["value_template"], others) == "not_ready"
        assert render(sensor["value_template"], {}) == "not_ready"
        assert json.loads(render(sensor["json_attributes_template"], STATE)) == {"ready": True, "why": "enough"}
        assert json.loads(render(sensor["json_attributes_template"], {})) == {}
    training = found["sensor/training"]
    assert json.loads(render(training["json_attributes_template"], STATE)) == STATE["training"]
    assert json.loads(render(training["json_attributes_template"], {})) == {}


NODE_EXPECTED = Path(__file__).with_name("hass_node_discovery.json")


def node_configs() -> dict[str, dict[str, Any]]:
    device = NodeDevice(HassTopics(Topics("voice"), "homeassistant"), "gpu-desk.lan")
    return {f"{e.component}/{e.object_id}": e.config for e in device.entities()}


def test_a_nodes_device_is_as_home_assistant_reads_it() -> None:
    expected = json.loads(NODE_EXPECTED.read_text().replace('"<version>"', json.dumps(__version__)))
    assert node_configs() == expected


ONLINE = NodeState(node="gpu-desk.lan", gpus=[GpuCard(index=0, free_mb=5100), GpuCard(index=1, free_mb=7300)],
                   memory=Memory(available_mb=2900, total_mb=16000), queues=Queues(speak=2, train=1)).model_dump()
NO_GPU = NodeState(node="box").model_dump()
WILL = NodeState.offline("gpu-desk.lan").model_dump()  # the broker's word when the node is gone


@pytest.mark.parametrize(("key", "document", "shown"), [
    ("binary_sensor/online", ONLINE, "ON"),
    ("binary_sensor/online", WILL, "OFF"),
    ("binary_sensor/online", {}, "OFF"),
    ("sensor/free_vram", ONLINE, "7300"),  # the card with the most free
    ("sensor/free_vram", NO_GPU, "0"),
    ("sensor/free_vram", {}, "0"),
    ("sensor/memory_available", ONLINE, "2900"),
    ("sensor/memory_available", {}, "0"),
    ("sensor/speak_queue", ONLINE, "2"),
    ("sensor/speak_queue", {}, "0"),
    ("sensor/train_queue", ONLINE, "1"),
    ("sensor/train_queue", {"queues": {}}, "0"),
])
def test_each_node_value_template_reads_the_nodes_state_document(key: str, document: dict[str, Any], shown: str) -> None:
    assert render(node_configs()[key]["value_template"], document) == shown


def test_a_nodes_sensors_are_unavailable_once_its_will_is_published_and_online_says_off() -> None:
    for key, config in node_configs().items():
        if key == "binary_sensor/online":
            assert "availability" not in config  # it must show the node offline, not go unavailable itself
            continue
        (availability,) = config["availability"]
        assert availability["topic"] == "voice/node/gpu-desk.lan/state"
        assert render(availability["value_template"], WILL) == availability["payload_not_available"]
        assert render(availability["value_template"], ONLINE) == availability["payload_available"]


def test_a_profiles_gpu_sensor_and_availability_follow_its_nodes_state() -> None:
    found = configs()
    gpu = found["sensor/gpu"]
    with_cards = NodeState(node="box", gpus=[GpuCard(index=0, name="RTX", total_mb=8000, free_mb=5100)]).model_dump()
    assert json.loads(render(gpu["json_attributes_template"], with_cards)) == {"gpus": with_cards["gpus"], "reason": ""}
    assert json.loads(render(gpu["json_attributes_template"], {"gpu_reason": "no NVML"})) == {"gpus": [], "reason": "no NVML"}
    for config in found.values():  # the will of another node on the same base topic never touches these
        (availability,) = config["availability"]
        assert availability["topic"] == "voice/node/box/state"
        assert render(availability["value_template"], NodeState.offline("box").model_dump()) == "offline"
        assert render(availability["value_template"], with_cards) == "online"
