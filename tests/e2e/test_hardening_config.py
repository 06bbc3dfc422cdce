"""What a request may put into voice.json and into a text to speak, through the real agent (issue
18, items 3 and 8): numbers that are not finite never get in, a file path leads inside the home
or is refused with an answer that says nothing about the file, and control characters in a text
are a bad request, not a provider's traceback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

BASE = "hardcfg"  # this module's own topics
PREFIX = "hardcfg-ha"
NOT_FINITE = ("1e999999", "-1e999999", "Infinity", "-Infinity", "NaN")


def hardened_agent(home: Path, broker: Mosquitto) -> AgentProcess:
    """An agent with its HTTP door on a free port (``agent.http``) and Home Assistant discovery."""
    port = free_port()
    agent = AgentProcess(home, broker.port, {
        "VOICE_AGENT_BASE_TOPIC": BASE, "VOICE_AGENT_HA_DISCOVERY_PREFIX": PREFIX,
        "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port),
    })
    agent.http = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return agent


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    home = make_home(tmp_path_factory.mktemp("hardening-config"), profiles=("default", "paths"))
    process = hardened_agent(home, broker).start()
    process.wait_log("ready")
    yield process
    process.stop()


def post(agent: AgentProcess, profile: str, command: str, body: bytes) -> requests.Response:
    return requests.post(f"{agent.http}/api/profiles/{profile}/commands/{command}", data=body,  # type: ignore[attr-defined]
                         headers={"Content-Type": "application/json"}, timeout=60)


def speaks(probe: Probe, profile: str, request_id: str) -> None:
    response = probe.request(profile, "speak", {"id": request_id, "text": "Still speaking."})
    assert response["status"] == "ok", response
    assert_speech(probe.wait_topic(f"{BASE}/{profile}/audio/{request_id}"))


def profile_file(agent: AgentProcess, profile: str) -> Path:
    return agent.home / "profiles" / profile / "etc" / "voice.json"


# -- item 3: numbers that are not finite ------------------------------------------------------


@pytest.mark.parametrize("number", NOT_FINITE)
def test_a_number_that_is_not_finite_is_refused_by_config_set_over_mqtt_and_http(
    agent: AgentProcess, probe: Probe, number: str
) -> None:
    before = profile_file(agent, "default").read_text()
    body = '{"changes": {"cache": {"maxSizeMB": %s}}}' % number
    over_mqtt = probe.request("default", "config.set", '{"id": "inf-mqtt", %s' % body[1:])
    over_http = post(agent, "default", "config.set", body.encode())

    assert over_mqtt["status"] == "error" and over_mqtt["code"] == "invalid_json", over_mqtt
    assert "finite" in over_mqtt["error"]
    assert over_http.status_code == 400 and over_http.json()["code"] == "invalid_json", over_http.text
    assert profile_file(agent, "default").read_text() == before
    speaks(probe, "default", "after-inf")


def test_a_cache_size_too_large_to_count_in_bytes_is_refused(agent: AgentProcess, probe: Probe) -> None:
    before = profile_file(agent, "default").read_text()
    response = probe.request("default", "config.set", {"changes": {"cache": {"maxSizeMB": 1e308}}})
    assert response["status"] == "error" and response["code"] == "invalid_config", response
    assert response["data"]["problems"][0]["field"] == "cache.maxSizeMB"
    assert profile_file(agent, "default").read_text() == before
    speaks(probe, "default", "after-huge")


def test_a_voice_json_with_infinity_does_not_break_the_profile_after_a_restart(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """What the agent wrote before this was refused: the profile speaks with the household's
    settings, and its state says what is wrong with its file."""
    home = make_home(tmp_path / "home")
    (home / "profiles" / "default" / "etc" / "voice.json").write_text('{"cache": {"maxSizeMB": Infinity}}\n')
    agent = hardened_agent(home, broker).start()
    probe = Probe(broker.port, base=BASE)
    try:
        agent.wait_log("ready")
        speaks(probe, "default", "restarted-1")
        state = json.loads(probe.wait_for(lambda t, p: t == f"{BASE}/default/state" and b"config_error" in p
                                          and b"finite" in p, timeout=10)[1])
        assert "not valid JSON" in state["config_error"]
        assert agent.stop() == 0
        agent.start().wait_log("ready")  # and again: nothing was made worse by the first run
        speaks(probe, "default", "restarted-2")
    finally:
        probe.close()
        agent.stop()
    assert "Traceback" not in agent.log.read_text()


# -- item 3: paths ----------------------------------------------------------------------------


def test_a_path_outside_the_home_is_forbidden_whatever_the_field_is_called(agent: AgentProcess, probe: Probe) -> None:
    before = profile_file(agent, "paths").read_text()
    for section, field in (("piper", "model"), ("rvc", "baseVoice"), ("kokoro", "voicesPath")):
        response = probe.request("paths", "config.set", {"changes": {"tts": {section: {field: "/etc/passwd"}}}})
        assert response["status"] == "error" and response["code"] == "forbidden", response
        assert f"tts.{section}.{field}" in response["error"]
    over_http = post(agent, "paths", "config.set", json.dumps({"changes": {"tts": {"piper": {"model": "/etc/passwd"}}}}).encode())
    assert over_http.status_code == 403 and over_http.json()["code"] == "forbidden", over_http.text
    assert profile_file(agent, "paths").read_text() == before


def test_a_trainers_path_parameter_outside_the_home_is_forbidden(agent: AgentProcess, probe: Probe) -> None:
    for key in ("pretrainedGenerator", "content_encoder_path"):
        response = probe.request("paths", "train", {"provider": "rvc", "params": {key: "/etc/passwd"}})
        assert response["status"] == "error" and response["code"] == "forbidden", response
        assert f"params.{key}" in response["error"]


def test_the_home_assistant_voice_select_cannot_point_outside_the_home(agent: AgentProcess, probe: Probe) -> None:
    before = profile_file(agent, "paths").read_text()
    mark = probe.mark()
    probe.publish(f"{BASE}/paths/hass/voice", "/etc/passwd")
    answer = probe.event("paths", "hass.config.set", after=mark)["data"]
    assert answer["status"] == "error" and answer["code"] == "forbidden", answer
    assert profile_file(agent, "paths").read_text() == before


def test_an_existing_and_a_missing_file_outside_the_home_get_the_same_answers(agent: AgentProcess, probe: Probe) -> None:
    """Asked to use /etc/shadow (which exists) and /nonexistent (which does not), the agent
    answers both alike: the answer to config.set and to the speak after it."""
    assert Path("/etc/shadow").exists() and not Path("/nonexistent").exists()
    answers = []
    for index, path in enumerate(("/etc/shadow", "/nonexistent")):
        mark = probe.mark()
        changed = probe.request("paths", "config.set", {"changes": {"tts": {"piper": {"model": path}}}})
        if changed["status"] == "ok":  # then the next speak is to use it
            probe.event("paths", "config.reloaded", timeout=10, after=mark)
        spoken = probe.request("paths", "speak", {"id": f"probe-{index}", "text": "Which file is there?"})

        def words(response: dict[str, Any]) -> str:
            return response.get("error", "").replace(path, "PATH").replace(Path(path).name, "NAME")

        answers.append((changed["status"], changed.get("code"), words(changed), spoken["status"], spoken.get("code"),
                        words(spoken)))
    assert answers[0] == answers[1], answers
    assert answers[0][:2] == ("error", "forbidden")


# -- item 8: control characters in a text ------------------------------------------------------


@pytest.mark.parametrize("text", ["Hello\u0000world.", "Bell\u0007 rings.", "Escape \u001b[31m red.", "Del\u007f."])
def test_a_control_character_in_a_text_is_an_invalid_payload(agent: AgentProcess, probe: Probe, text: str) -> None:
    log_before = len(agent.log.read_text())
    response = probe.request("default", "speak", {"id": "ctl-1", "text": text})
    assert response["status"] == "error" and response["code"] == "invalid_payload", response
    assert "control character" in response["error"]
    over_http = post(agent, "default", "speak", json.dumps({"text": text}).encode())
    assert over_http.status_code == 400 and over_http.json()["code"] == "invalid_payload", over_http.text
    speaks(probe, "default", "after-ctl")
    assert "Traceback" not in agent.log.read_text()[log_before:]


def test_lines_and_tabs_are_text(agent: AgentProcess, probe: Probe) -> None:
    response = probe.request("default", "speak", {"id": "lines-1", "text": "First line.\r\nSecond\tline.\n"})
    assert response["status"] == "ok", response
    assert_speech(probe.wait_topic(f"{BASE}/default/audio/lines-1"))
