"""Home Assistant discovery's extension (agent/mqtt/hass/extension.py) in-process, rule by rule:
what it subscribes to, every profile's device published retained on each connect and on Home
Assistant's ``online`` (not on anything else), a profile that appears, the voice select published
again when the provider or voice changes and only then (a stale listing never wins), each entity's
command mapped to its request, and each refusal answered as a ``hass.<command>`` event. The e2e
tests (tests/e2e/test_hass.py) run the same through Mosquitto."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from agent.commands import Command
from agent.errors import ServiceError
from agent.mqtt.hass.entities import HassTopics, NodeDevice, ProfileDevice
from agent.mqtt.hass.extension import HassDiscovery, select_options
from agent.mqtt.topics import Topics
from agent.nodes.state import NodeState
from agent.settings import AgentSettings
from agent.voices.requests import VoicesRequest
from tests.agent.mqtt.fakes import Published, Transport, mqtt_core

PROFILES = {"default": "piper", "den": "kokoro", "loft": "sovits", "attic": "rvc"}
VOICES: list[dict[str, Any]] = [
    {"provider": "piper", "name": "en_US-amy-medium", "language": "en_US"},
    {"provider": "piper", "name": "en_GB-alan-low", "language": "en_GB", "installed": False},
    {"provider": "piper", "name": "de_DE-thorsten-low", "language": "de_DE", "installed": False},
    {"provider": "kokoro", "name": "af_heart", "language": "en-us"},
]
REQUEST_ID = re.compile(r"ha-[0-9a-f]{10}")
NODE = "hall.box"  # this agent's node: a dot, which a discovery node id may not hold


def made(tmp_path: Path, profiles: dict[str, str] | None = None, base: str = "voice", prefix: str = "homeassistant",
         **settings: Any) -> tuple[HassDiscovery, Any, Transport]:
    core = mqtt_core(dict(PROFILES) if profiles is None else profiles)
    transport = Transport()
    options = AgentSettings(home=tmp_path, ha_discovery_prefix=prefix, node=NODE, **settings)
    return HassDiscovery(core, options, transport, Topics(base)), core, transport  # type: ignore[arg-type]


def device(hass: HassTopics, profile: str) -> list[Published]:
    """A profile's device as it must be published: every entity's config, retained, keys sorted."""
    return [Published(hass.config(e, profile), json.dumps(e.config, sort_keys=True).encode(), 1, True)
            for e in ProfileDevice(hass, profile, NODE).entities()]


def node_device(hass: HassTopics) -> list[Published]:
    """This agent's node's device as it must be published: retained, under the node's own id."""
    found = NodeDevice(hass, NODE)
    return [Published(f"{hass.prefix}/{e.component}/{hass.topics.base.replace('/', '_')}_node_hall_box-4e496c/{e.object_id}/config",
                      json.dumps(e.config, sort_keys=True).encode(), 1, True) for e in found.entities()]


def voice_select(hass: HassTopics, profile: str, options: list[str]) -> Published:
    entity = ProfileDevice(hass, profile, NODE).voice_select(options)
    return Published(hass.config(entity, profile), json.dumps(entity.config, sort_keys=True).encode(), 1, True)


def test_it_hears_home_assistants_status_and_every_profiles_entity_commands(tmp_path: Path) -> None:
    discovery, _, _ = made(tmp_path, base="home/voice", prefix="ha-test")
    assert discovery.subscriptions() == [("ha-test/status", 1), ("home/voice/+/hass/+", 1)]


def test_each_connect_publishes_every_profiles_device_retained(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper", "den": "kokoro"}, prefix="ha-test")
    assert transport.sent == []  # nothing before the broker is there
    discovery.on_connect()
    hass = HassTopics(Topics("voice"), "ha-test")
    assert transport.sent == node_device(hass) + device(hass, "default") + device(hass, "den")
    assert core.calls.calls == {}  # no profile has said its provider yet: no voice select
    transport.sent.clear()
    discovery.on_connect()  # the broker may have lost what was retained
    assert transport.sent == node_device(hass) + device(hass, "default") + device(hass, "den")


def test_home_assistant_coming_online_gets_every_device_again_and_nothing_else_does(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    hass = discovery.hass
    discovery.on_connect()
    core.state.update("default", provider="piper", voice="en_US-amy-medium")
    core.calls.only("voices").answer.set_result({"voices": VOICES})
    transport.sent.clear()
    for payload in (b"offline", b"", b"online-ish", b"Online"):
        assert discovery.on_message("homeassistant/status", payload)
    assert transport.sent == [] and len(core.calls.calls["voices"]) == 1
    with caplog.at_level(logging.INFO, "agent.mqtt.hass.extension"):
        assert discovery.on_message("homeassistant/status", b" online\n")
    assert [r.getMessage() for r in caplog.records] == ["Home Assistant is online: publishing discovery again"]
    assert transport.sent == node_device(hass) + device(hass, "default")
    second = core.calls.calls["voices"][1]  # the voice select is listed again, not left out
    assert second.request.provider == "piper" and second.request.catalog is True
    second.answer.set_result({"voices": VOICES})
    assert transport.sent[-1] == voice_select(hass, "default", ["en_US-amy-medium", "en_GB-alan-low"])


def test_the_voice_select_lists_the_providers_voices_of_the_language_in_force(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    discovery.on_connect()
    transport.sent.clear()
    core.state.update("default", provider="piper", voice="en_US-amy-medium")
    called = core.calls.only("voices")
    assert called.profile == "default"
    assert (called.request.catalog, called.request.provider, called.request.language) == (True, "piper", "")
    assert called.out.where("r1", False) == "voice/default/audio/r1"  # the profile's own audio topics
    assert transport.sent == []  # listed on the samples' thread: published when it answers
    called.answer.set_result({"voices": VOICES})
    options = select_options(VOICES, "piper", "en_US-amy-medium")
    assert options == ["en_US-amy-medium", "en_GB-alan-low"]
    assert transport.sent == [voice_select(discovery.hass, "default", options)]


def test_the_voice_in_force_is_an_option_even_when_the_listing_does_not_know_it(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    discovery.on_connect()
    transport.sent.clear()
    core.state.update("default", provider="piper", voice="/home/me/own.onnx")
    core.calls.only("voices").answer.set_result({"voices": VOICES})
    assert transport.sent == [voice_select(discovery.hass, "default", ["en_US-amy-medium", "en_GB-alan-low",
                                                                        "/home/me/own.onnx"])]


def test_a_provider_the_registry_does_not_know_lists_every_voice(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    discovery.on_connect()
    core.state.update("default", provider="custom", voice="x")
    request = core.calls.only("voices").request
    assert request == VoicesRequest()


def test_the_voice_select_is_published_again_when_the_provider_or_voice_changes_and_only_then(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    discovery.on_connect()
    core.state.update("default", provider="piper", voice="en_US-amy-medium")
    core.calls.calls["voices"][0].answer.set_result({"voices": VOICES})
    core.state.update("default", queue_depth=1, samples=4)  # other fields: the select stands
    assert len(core.calls.calls["voices"]) == 1
    core.state.update("default", voice="en_GB-alan-low")
    core.state.update("default", provider="kokoro", voice="af_heart")
    assert [c.request.provider for c in core.calls.calls["voices"]] == ["piper", "piper", "kokoro"]
    transport.sent.clear()
    core.calls.calls["voices"][2].answer.set_result({"voices": VOICES})
    core.calls.calls["voices"][1].answer.set_result({"voices": VOICES})  # stale: the provider changed since
    assert transport.sent == [voice_select(discovery.hass, "default", ["af_heart"])]


def test_a_listing_answered_at_once_or_refused_still_publishes_the_select_with_the_voice_in_force(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper", "den": "kokoro"})
    core.commands["voices"] = Command(VoicesRequest, lambda p, r, out: {"voices": VOICES})
    discovery.on_connect()
    transport.sent.clear()
    core.state.update("default", provider="piper", voice="en_US-amy-medium")
    assert transport.sent == [voice_select(discovery.hass, "default", ["en_US-amy-medium", "en_GB-alan-low"])]

    def stopping(profile: str, request: Any, out: Any) -> Any:
        raise ServiceError("stopping", "the agent is stopping")

    core.commands["voices"] = Command(VoicesRequest, stopping)
    with caplog.at_level(logging.WARNING, "agent.mqtt.hass.extension"):
        core.state.update("den", provider="kokoro", voice="af_heart")
    assert transport.sent[1:] == [voice_select(discovery.hass, "den", ["af_heart"])]  # its state is an option
    assert [r.getMessage() for r in caplog.records] == ["voices of den for its voice select: the agent is stopping"]


def test_a_failed_listing_later_publishes_the_select_with_the_voice_in_force_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    discovery.on_connect()
    transport.sent.clear()
    core.state.update("default", provider="piper", voice="en_US-amy-medium")
    with caplog.at_level(logging.WARNING, "agent.mqtt.hass.extension"):
        core.calls.only("voices").answer.set_exception(RuntimeError("engines unreadable"))
    assert transport.sent == [voice_select(discovery.hass, "default", ["en_US-amy-medium"])]
    assert [r.getMessage() for r in caplog.records] == ["voices of default for its voice select: engines unreadable"]


def test_a_profile_that_appears_while_running_gets_its_device(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    core.state.update("default", provider="piper")  # before the broker: published on connect
    assert transport.sent == [] and core.calls.calls == {}
    discovery.on_connect()
    core.calls.only("voices").answer.set_result({"voices": VOICES})
    transport.sent.clear()
    core.providers["porch"] = "piper"  # its folder was made
    core.state.update("porch", samples=0)
    assert transport.sent == device(discovery.hass, "porch")
    core.state.update("ghost", samples=1)  # a state that is no profile's
    core.state.update("gpu", available=True)  # the GPU's own document
    assert transport.sent == device(discovery.hass, "porch")


def test_the_gpus_state_is_never_taken_for_a_profile(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    discovery.on_connect()
    transport.sent.clear()
    core.providers["gpu"] = "piper"  # even a profile folder of that name
    core.state.update("gpu", available=True)
    assert transport.sent == []


def test_after_stop_nothing_more_is_published(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    discovery.on_connect()
    core.state.update("default", provider="piper", voice="en_US-amy-medium")
    discovery.stop()
    transport.sent.clear()
    core.calls.only("voices").answer.set_result({"voices": VOICES})  # the listing ends after the stop
    core.providers["porch"] = "piper"
    core.state.update("porch", samples=0)
    core.state.update("default", provider="kokoro")
    discovery.on_connect()  # paho reconnecting while the agent stops
    assert transport.sent == [] and len(core.calls.calls["voices"]) == 1


def answered(transport: Transport, profile: str, command: str) -> dict[str, Any]:
    (event,) = transport.on(f"voice/{profile}/event/hass.{command}")
    assert (event.qos, event.retain) == (1, False)
    document = event.json()
    assert document["type"] == f"hass.{command}"
    return document["data"]  # type: ignore[no-any-return]


def test_the_speak_entity_speaks_the_message_as_sent_and_the_answer_is_an_event(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    discovery, core, transport = made(tmp_path)
    with caplog.at_level(logging.INFO, "agent.mqtt.hass.extension"):
        assert discovery.on_message("voice/den/hass/speak", "  Der Kaffee ist fertig.\n".encode())
        called = core.calls.only("speak")
        assert called.profile == "den" and called.request.text == "  Der Kaffee ist fertig.\n"
        assert REQUEST_ID.fullmatch(called.request.id)
        called.out.whole(called.request.id, b"RIFF")  # its audio goes where the profile's audio goes
        assert transport.sent == [Published(f"voice/den/audio/{called.request.id}", b"RIFF", 1, False)]
        before = time.time()
        called.answer.set_result({"id": called.request.id, "provider": "kokoro", "voice": "af_heart", "cached": None})
        after = time.time()
    (event,) = transport.on("voice/den/event/hass.speak")
    document = event.json()
    assert (event.qos, event.retain) == (1, False) and before <= document.pop("time") <= after
    assert document == {"type": "hass.speak", "data": {
        "id": called.request.id, "status": "ok", "data": {"id": called.request.id, "provider": "kokoro",
                                                          "voice": "af_heart", "cached": None}}}
    assert [r.getMessage() for r in caplog.records] == ["Home Assistant's speak for den: ok"]


def test_each_speak_gets_its_own_request_id(tmp_path: Path) -> None:
    discovery, core, _ = made(tmp_path)
    for _ in range(2):
        discovery.on_message("voice/default/hass/speak", b"Hello.")
    ids = [c.request.id for c in core.calls.calls["speak"]]
    assert ids[0] != ids[1] and all(REQUEST_ID.fullmatch(i) for i in ids)


def test_the_provider_select_sets_the_profiles_provider(tmp_path: Path) -> None:
    discovery, core, _ = made(tmp_path)
    assert discovery.on_message("voice/default/hass/provider", b" kokoro\n")
    called = core.calls.only("config.set")
    assert called.profile == "default" and called.request.changes == {"tts": {"provider": "kokoro"}}
    assert REQUEST_ID.fullmatch(called.request.id)


@pytest.mark.parametrize(("profile", "changes"), [
    ("default", {"piper": {"model": "en_GB-alan-low"}}),
    ("den", {"kokoro": {"voice": "en_GB-alan-low"}}),
    ("loft", {"sovits": {"speakerId": "en_GB-alan-low"}}),  # voice.json's own key, camelCase
    ("attic", {"rvc": {"speakerId": "en_GB-alan-low"}}),
])
def test_the_voice_select_sets_the_voice_of_the_provider_the_profile_speaks_with(
        tmp_path: Path, profile: str, changes: dict[str, Any]) -> None:
    discovery, core, _ = made(tmp_path)
    assert discovery.on_message(f"voice/{profile}/hass/voice", b"en_GB-alan-low \n")
    called = core.calls.only("config.set")
    assert called.profile == profile and called.request.changes == {"tts": changes}


@pytest.mark.parametrize("provider", ["kokoro", "rvc"])
def test_a_train_button_queues_that_providers_training_for_an_idle_hour(tmp_path: Path, provider: str) -> None:
    discovery, core, _ = made(tmp_path)
    assert discovery.on_message(f"voice/den/hass/train_{provider}", b"PRESS")
    called = core.calls.only("train")
    assert called.profile == "den"
    assert (called.request.provider, called.request.speaker, called.request.when) == (provider, "default", "idle")
    assert called.request.params == {} and called.request.check is False and REQUEST_ID.fullmatch(called.request.id)


def test_an_entity_that_does_not_exist_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    discovery, core, transport = made(tmp_path)
    with caplog.at_level(logging.WARNING, "agent.mqtt.hass.extension"):
        for object_id in ("samples", "train_piper", "train_", "speaking"):
            assert discovery.on_message(f"voice/default/hass/{object_id}", b"PRESS")
    assert transport.sent == [] and core.calls.calls == {}
    assert [r.getMessage() for r in caplog.records][0] == (
        "no Home Assistant entity 'samples': ignored the message on voice/default/hass/samples")
    assert len(caplog.records) == 4


@pytest.mark.parametrize(("topic", "payload", "code", "error"), [
    ("voice/ghost/hass/speak", b"Hello.", "unknown_profile", "no profile 'ghost' (profiles are directories under profiles/)"),
    ("voice/Not A Name/hass/provider", b"piper", "invalid_profile", "profile name 'Not A Name' is not a plain identifier"),
    ("voice/ghost/hass/voice", b"amy", "unknown_profile", "no profile 'ghost' (profiles are directories under profiles/)"),
    ("voice/default/hass/speak", b"\xff\xfeHello", "invalid_payload",
     "the message is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ("voice/den/hass/train_kokoro", b"\xc3", "invalid_payload",
     "the message is not UTF-8 text: 'utf-8' codec can't decode byte 0xc3 in position 0: unexpected end of data"),
])
def test_a_message_refused_before_any_command_is_an_error_event(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, topic: str, payload: bytes, code: str, error: str) -> None:
    discovery, core, transport = made(tmp_path)
    profile, object_id = discovery.hass.parse_command(topic)  # type: ignore[misc]
    command = {"speak": "speak", "provider": "config.set", "voice": "config.set", "train_kokoro": "train"}[object_id]
    with caplog.at_level(logging.WARNING, "agent.mqtt.hass.extension"):
        assert discovery.on_message(topic, payload)
    assert core.calls.calls == {}
    data = answered(transport, profile, command)
    assert REQUEST_ID.fullmatch(data.pop("id"))
    assert data == {"status": "error", "code": code, "error": error}
    assert [r.getMessage() for r in caplog.records] == [f"Home Assistant's {command} for {profile} refused: {code}: {error}"]


def test_a_command_for_a_profile_at_home_on_another_node_is_left_to_that_node(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every node hears every profile's entity commands (``<base>/+/hass/+``): one for a profile
    another online node lists is that node's to carry out, so this one says nothing (an
    ``unknown_profile`` event would tell Home Assistant that a request failed which its home did)."""
    discovery, core, transport = made(tmp_path, {"default": "piper"})
    core.nodes.registry.heard("desk", NodeState(node="desk", profiles=["office"]).to_json())
    core.nodes.registry.heard(NODE, NodeState(node=NODE, profiles=["default", "gone"]).to_json())  # not refreshed yet
    with caplog.at_level(logging.DEBUG, "agent.mqtt.hass.extension"):
        for object_id in ("speak", "provider", "voice", "train_kokoro", "samples"):
            assert discovery.on_message(f"voice/office/hass/{object_id}", b"PRESS")
    assert transport.sent == [] and core.calls.calls == {}
    assert [r.getMessage() for r in caplog.records][:2] == [
        "voice/office/hass/speak is for profile office, at home on another node: left to it",
        "voice/office/hass/provider is for profile office, at home on another node: left to it"]
    assert len(caplog.records) == 5
    assert discovery.on_message("voice/default/hass/speak", b"Hello.")  # its own still its own
    assert core.calls.only("speak").profile == "default"
    assert discovery.on_message("voice/gone/hass/speak", b"Hello.")  # this node's own (stale) document is no other home
    assert answered(transport, "gone", "speak")["code"] == "unknown_profile"
    core.nodes.registry.heard("desk", NodeState.offline("desk").to_json())  # its home gone: nobody's, and said so
    assert discovery.on_message("voice/office/hass/speak", b"Hello.")
    assert answered(transport, "office", "speak")["code"] == "unknown_profile"


def test_what_the_command_refuses_is_an_error_event_with_its_code(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, max_request_bytes=256)
    assert discovery.on_message("voice/default/hass/speak", b"")  # speak says what it needs
    data = answered(transport, "default", "speak")
    assert (data["status"], data["code"], REQUEST_ID.fullmatch(data["id"]) is not None) == ("error", "invalid_payload", True)
    transport.sent.clear()
    assert discovery.on_message("voice/default/hass/speak", b"x" * 300)  # over the door's request limit
    data = answered(transport, "default", "speak")
    assert (data["code"], data["error"].endswith("the limit is 256")) == ("payload_too_large", True)
    transport.sent.clear()
    core.calls.refuse["config.set"] = ServiceError("forbidden", "config.set is switched off for this profile")
    assert discovery.on_message("voice/default/hass/provider", b"kokoro")
    data = answered(transport, "default", "config.set")
    assert (data["code"], data["error"]) == ("forbidden", "config.set is switched off for this profile")
    transport.sent.clear()
    assert discovery.on_message("voice/default/hass/train_rvc", b"PRESS")
    core.calls.only("train").answer.set_exception(ServiceError("unknown_trainer", "no rvc trainer here"))
    data = answered(transport, "default", "train")
    assert (data["status"], data["code"], data["error"]) == ("error", "unknown_trainer", "no rvc trainer here")


@pytest.mark.parametrize("topic", [
    "voice/default/request/speak", "voice/default/hass/speak/x", "other/default/hass/speak", "voice/hass/speak",
    "homeassistant/status/x", "ha/status", "voice/status", "homeassistant/notify/voice_default/speak/config",
])
def test_what_is_not_home_assistants_is_left_to_the_others(tmp_path: Path, topic: str) -> None:
    discovery, core, transport = made(tmp_path)
    discovery.on_connect()
    transport.sent.clear()
    assert discovery.on_message(topic, b"online") is False
    assert transport.sent == [] and core.calls.calls == {}


def test_a_prefix_and_base_of_its_own_are_used_throughout(tmp_path: Path) -> None:
    discovery, core, transport = made(tmp_path, {"default": "piper"}, base="home/voice", prefix="ha")
    hass = HassTopics(Topics("home/voice"), "ha")
    assert discovery.on_message("homeassistant/status", b"online") is False
    assert discovery.on_message("ha/status", b"online")
    assert transport.sent == node_device(hass) + device(hass, "default")
    assert discovery.on_message("home/voice/default/hass/speak", b"Hi.")
    called = core.calls.only("speak")
    called.out.whole("x", b"RIFF")
    called.answer.set_result({"id": called.request.id})
    assert [p.topic for p in transport.sent[-2:]] == ["home/voice/default/audio/x", "home/voice/default/event/hass.speak"]
