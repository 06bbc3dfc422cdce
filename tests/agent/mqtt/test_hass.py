"""Home Assistant discovery's topics and configs, in-process (the e2e tests run the real agent)."""

from __future__ import annotations

from agent.mqtt.hass.entities import HassTopics, ProfileDevice
from agent.mqtt.hass.extension import command_of
from agent.mqtt.topics import Topics
from providers import registry


def test_a_base_topic_with_levels_makes_a_plain_node_id_and_command_topics_parse_back() -> None:
    hass = HassTopics(Topics("home/voice"), "homeassistant")
    assert hass.node("kitchen") == "home_voice_kitchen"  # Home Assistant allows [A-Za-z0-9_-] only
    entity = ProfileDevice(hass, "kitchen", "box").entities()[0]
    expected = f"homeassistant/{entity.component}/home_voice_kitchen/{entity.object_id}/config"
    assert hass.config(entity, "kitchen") == expected
    assert hass.command("kitchen", "speak") == "home/voice/kitchen/hass/speak"
    assert hass.parse_command("home/voice/kitchen/hass/speak") == ("kitchen", "speak")
    for other in ("home/voice/kitchen/request/speak", "home/voice/kitchen/hass/speak/x", "voice/kitchen/hass/speak"):
        assert hass.parse_command(other) is None
    assert hass.ha_status == "homeassistant/status"


def test_every_command_topic_of_a_device_reaches_a_command() -> None:
    device = ProfileDevice(HassTopics(Topics("voice"), "homeassistant"), "default", "box")
    entities = [*device.entities(), device.voice_select(["a"])]
    with_commands = {e.object_id: command_of(e.object_id) for e in entities if "command_topic" in e.config}
    trainers = [s.name for s in registry.SPECS if s.trainer is not None]
    assert with_commands == {"speak": "speak", "provider": "config.set", "voice": "config.set",
                             **{f"train_{name}": "train" for name in trainers}}
    assert command_of("samples") is None and command_of("train_piper") is None  # no such button
    assert len({e.config["unique_id"] for e in entities}) == len(entities)
