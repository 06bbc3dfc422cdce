"""voice.json edits apply to the next request without a restart; bad edits are refused."""

from __future__ import annotations

import json

from tests.conftest import AgentProcess, Probe, write_json

TEXT = "Reloading the configuration changes this voice."


def speak_seconds(probe: Probe, profile: str, request_id: str) -> float:
    response = probe.request(profile, "speak", {"id": request_id, "text": TEXT})
    assert response["status"] == "ok", response
    return float(response["data"]["audio_seconds"])


def test_good_edit_applies_to_next_request(running_agent: AgentProcess, probe: Probe) -> None:
    config = running_agent.home / "profiles" / "kitchen" / "etc" / "voice.json"
    write_json(config, {})  # the household's defaults, whatever an earlier test left
    probe.event("kitchen", "config.reloaded", timeout=10)
    before = speak_seconds(probe, "kitchen", "hr-before")

    mark = probe.mark()
    write_json(config, {"tts": {"piper": {"speakingRate": 0.5}}})
    reloaded = probe.event("kitchen", "config.reloaded", timeout=10, after=mark)

    assert reloaded["data"]["changed"] is True
    assert 1.6 < speak_seconds(probe, "kitchen", "hr-after") / before < 2.4
    # the other profile is untouched
    assert 0.8 < speak_seconds(probe, "default", "hr-other") / before < 1.25


def test_bad_edit_is_refused_and_last_good_stays(running_agent: AgentProcess, probe: Probe) -> None:
    config = running_agent.home / "profiles" / "kitchen" / "etc" / "voice.json"
    write_json(config, {"tts": {"piper": {"speakingRate": 0.5}}})
    probe.event("kitchen", "config.reloaded", timeout=10)
    slow = speak_seconds(probe, "kitchen", "bad-0")

    write_json(config, {"tts": {"piper": {"speakingRate": 7, "pitch": 2}}})
    invalid = probe.event("kitchen", "config.invalid", timeout=10)["data"]

    fields = {p["field"]: p["message"] for p in invalid["problems"]}
    assert "tts.piper.speakingRate" in fields and "less than or equal to 2" in fields["tts.piper.speakingRate"]
    assert "tts.piper.pitch" in fields
    assert 0.85 < speak_seconds(probe, "kitchen", "bad-1") / slow < 1.15, "last good config was not kept"
    state = json.loads(probe.wait_for(lambda t, p: t == "voice/kitchen/state" and b"speakingRate" in p, 10)[1])
    assert "speakingRate" in state["config_error"]


def test_broken_json_is_refused(running_agent: AgentProcess, probe: Probe) -> None:
    config = running_agent.home / "profiles" / "kitchen" / "etc" / "voice.json"
    config.write_text('{"tts": {"piper": ')
    invalid = probe.event("kitchen", "config.invalid", timeout=10)["data"]
    assert "not valid JSON" in invalid["problems"][0]["message"]
    assert probe.request("kitchen", "speak", {"text": "Still speaking."})["status"] == "ok"


def test_global_edit_reaches_every_profile(running_agent: AgentProcess, probe: Probe) -> None:
    write_json(running_agent.home / "profiles" / "kitchen" / "etc" / "voice.json", {})
    probe.event("kitchen", "config.reloaded", timeout=10)
    global_config = running_agent.home / "etc" / "voice.json"
    document = json.loads(global_config.read_text())
    document["cache"]["enabled"] = False
    write_json(global_config, document)
    probe.event("default", "config.reloaded", timeout=10)

    first = probe.request("default", "speak", {"text": TEXT})
    second = probe.request("default", "speak", {"text": TEXT})
    assert first["data"]["cached"] is False and second["data"]["cached"] is False
