"""Two agents on one broker (agent/mqtt/hass/entities.py): the same profile name under two base
topics must give Home Assistant two devices whose entities, unique ids, discovery topics and
command topics never collide (one agent's discovery would otherwise replace the other's)."""

from __future__ import annotations

from agent.mqtt.hass.entities import HassTopics, NodeDevice, ProfileDevice
from agent.mqtt.topics import Topics


def described(base: str) -> tuple[HassTopics, ProfileDevice]:
    hass = HassTopics(Topics(base), "homeassistant")
    return hass, ProfileDevice(hass, "default", "box")


def test_the_same_profile_of_two_agents_never_collides() -> None:
    seen: dict[str, set[str]] = {"unique": set(), "device": set(), "config": set(), "command": set()}
    for base in ("voice", "voice2", "house/voice"):
        hass, device = described(base)
        entities = [*device.entities(), device.voice_select(["a"])]
        unique = {e.config["unique_id"] for e in entities}
        identifiers = {i for e in entities for i in e.config["device"]["identifiers"]}
        configs = {hass.config(e, "default") for e in entities}
        commands = {e.config["command_topic"] for e in entities if "command_topic" in e.config}
        assert len(unique) == len(configs) == len(entities) and len(identifiers) == 1
        for key, mine in (("unique", unique), ("device", identifiers), ("config", configs), ("command", commands)):
            assert not seen[key] & mine, (base, key)
            seen[key] |= mine


def test_an_entitys_ids_name_the_agent_the_profile_and_the_object() -> None:
    hass, device = described("house/voice")
    speak = device.entities()[0]
    assert speak.config["unique_id"] == "voice_agent_house_voice_default_speak"
    assert speak.config["device"]["identifiers"] == ["voice_agent_house_voice_default"]
    assert speak.config["command_topic"] == "house/voice/default/hass/speak"
    assert hass.config(speak, "default") == "homeassistant/notify/house_voice_default/speak/config"
    assert speak.config["availability"] == [{"topic": "house/voice/node/box/state", "value_template": "{{ value_json.status }}",
                                             "payload_available": "online", "payload_not_available": "offline"}]


def test_a_node_id_keeps_the_letter_case_and_replaces_only_what_home_assistant_refuses() -> None:
    assert HassTopics(Topics("Home/Voice.1"), "homeassistant").node("Kitchen_2") == "Home_Voice_1_Kitchen_2"


def test_nodes_of_one_household_have_devices_of_their_own_and_each_profile_is_reached_via_its_node() -> None:
    hass = HassTopics(Topics("voice"), "homeassistant")  # several nodes share the household's base topic
    seen: dict[str, set[str]] = {"unique": set(), "device": set(), "config": set()}
    for node in ("box", "gpu-desk.lan", "gpu-desk_lan"):
        device = NodeDevice(hass, node)
        entities = device.entities()
        unique = {e.config["unique_id"] for e in entities}
        identifiers = {i for e in entities for i in e.config["device"]["identifiers"]}
        configs = {hass.config_under(e, device.node_id) for e in entities}
        assert len(unique) == len(configs) == len(entities) and len(identifiers) == 1
        for key, mine in (("unique", unique), ("device", identifiers), ("config", configs)):
            assert not seen[key] & mine, (node, key)
            seen[key] |= mine
        profile = ProfileDevice(hass, f"room-{len(seen['device'])}", node).entities()[0]
        assert [profile.config["device"]["via_device"]] == list(identifiers)
    assert hass.config_under(NodeDevice(hass, "gpu-desk.lan").entities()[0], hass.agent_node("gpu-desk.lan")) == (
        "homeassistant/binary_sensor/voice_node_gpu-desk_lan-39ddcd/online/config")
