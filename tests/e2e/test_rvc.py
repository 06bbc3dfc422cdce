"""RVC through the real agent and broker: a speak request with provider "rvc" comes back as WAV at
the model's rate (whole and streamed per sentence, cached the second time), and falls back to
Piper when the speaker's model or the content encoder is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio_checks import assert_speech, wav_info
from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.mosquitto import Mosquitto
from tests.providers.rvc.fakes import RvcFile, install_rvc_assets, write_rvc_model

pytestmark = pytest.mark.slow

BASE = "rvc-e2e"
TIMEOUT = 180  # the first request loads torch and every model on a busy 2-core machine
KITCHEN = {"tts": {"rvc": {"speakerId": "chef", "f0Method": "harvest"}}}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    home = make_home(tmp_path_factory.mktemp("rvc-home"), profiles=("default", "kitchen"))
    install_rvc_assets(home / "out" / "voices")  # household: hubert_base.pt, rmvpe.pt, speaker 'default'
    write_rvc_model(home / "profiles" / "kitchen" / "out" / "voices" / "rvc-models" / "chef" / "chef.pth",
                    RvcFile(version="v1", sr="48k", style="applio"))
    write_json(home / "profiles" / "kitchen" / "etc" / "voice.json", KITCHEN)
    process = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": BASE}).start()
    process.wait_log("ready")
    yield process
    process.stop()


def test_speak_with_rvc_returns_audio_at_the_models_rate(agent: AgentProcess, probe: Probe) -> None:
    text = "The front door is locked."
    response = probe.request("default", "speak", {"id": "rvc-1", "text": text, "provider": "rvc"}, timeout=TIMEOUT)

    assert response["status"] == "ok", response
    data = response["data"]
    assert data["provider"] == "rvc" and data["voice"] == "default" and data["fallback"] is False
    assert data["sample_rate"] == 40000
    rate, seconds, _ = wav_info(probe.wait_topic(f"{BASE}/default/audio/rvc-1"))
    assert rate == 40000 and seconds == pytest.approx(data["audio_seconds"], abs=0.01) and seconds > 0.8

    piper = probe.request("default", "speak", {"id": "piper-1", "text": text}, timeout=TIMEOUT)
    # same words, same timing, another voice: within Piper's own spread for this sentence
    # (1.196-1.405 s over 200 syntheses, measured), far from a wrong rate (x1.8 at 40 kHz)
    assert abs(piper["data"]["audio_seconds"] - seconds) < 0.3

    again = probe.request("default", "speak", {"id": "rvc-2", "text": text, "provider": "rvc"}, timeout=TIMEOUT)
    assert again["data"]["cached"] is True
    assert probe.wait_topic(f"{BASE}/default/audio/rvc-2") == probe.wait_topic(f"{BASE}/default/audio/rvc-1")


def test_streaming_sends_each_converted_sentence(agent: AgentProcess, probe: Probe) -> None:
    text = "Dinner is ready. Please come to the table."
    response = probe.request(
        "kitchen", "speak", {"id": "rvc-s", "text": text, "provider": "rvc", "stream": True}, timeout=TIMEOUT
    )
    assert response["status"] == "ok", response
    assert response["data"]["provider"] == "rvc" and response["data"]["voice"] == "chef"
    assert response["data"]["chunks"] == 2
    for seq in range(2):
        rate, seconds, _ = wav_info(probe.wait_topic(f"{BASE}/kitchen/audio/rvc-s/{seq}"))
        assert rate == 48000 and seconds > 0.5


def test_missing_model_falls_back_to_piper(agent: AgentProcess, probe: Probe) -> None:
    response = probe.request(
        "default", "speak", {"id": "rvc-fb", "text": "Nobody trained me.", "provider": "rvc", "voice": "nobody"},
        timeout=TIMEOUT,
    )
    assert response["status"] == "ok", response
    assert response["data"]["provider"] == "piper" and response["data"]["fallback"] is True
    reason = probe.event("default", "provider.fallback", "rvc-fb")["data"]["reason"]
    assert "no RVC model for speaker 'nobody'" in reason and "rvc-models/nobody" in reason
    assert_speech(probe.wait_topic(f"{BASE}/default/audio/rvc-fb"))


def test_missing_content_encoder_falls_back_to_piper(agent: AgentProcess, probe: Probe) -> None:
    config = agent.home / "profiles" / "kitchen" / "etc" / "voice.json"
    write_json(config, {"tts": {"rvc": {"speakerId": "chef", "contentEncoderPath": "/missing/hubert_base.pt"}}})
    probe.event("kitchen", "config.reloaded", timeout=10)
    try:
        response = probe.request("kitchen", "speak", {"id": "rvc-enc", "text": "Hello.", "provider": "rvc"}, timeout=TIMEOUT)
        assert response["status"] == "ok", response
        assert response["data"]["provider"] == "piper" and response["data"]["fallback"] is True
        reason = probe.event("kitchen", "provider.fallback", "rvc-enc")["data"]["reason"]
        assert "content encoder not found at /missing/hubert_base.pt" in reason
    finally:  # the kitchen's own model again, for the tests that run after this one
        mark = probe.mark()
        write_json(config, KITCHEN)
        probe.event("kitchen", "config.reloaded", timeout=10, after=mark)


def test_cli_validates_the_installed_model(agent: AgentProcess, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    speaker = agent.home / "out" / "voices" / "rvc-models" / "default"
    env = {**os.environ, "VOICE_AGENT_HOME": str(agent.home)}
    result = subprocess.run([sys.executable, "-m", "agent", "rvc", "validate", str(speaker)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "version: v2" in result.stdout and "matches" in result.stdout and "result: OK" in result.stdout


def test_cli_suggests_a_pitch_shift_from_the_owners_samples(agent: AgentProcess) -> None:
    import os
    import subprocess
    import sys

    from tests.providers.rvc.test_engine import _write_samples

    _write_samples(agent.home / "profiles" / "kitchen" / "out" / "voices" / "samples", 7)
    env = {**os.environ, "VOICE_AGENT_HOME": str(agent.home)}
    result = subprocess.run([sys.executable, "-m", "agent", "rvc", "suggest-pitch", "-p", "kitchen"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    shift = int(result.stdout.split("pitchShift ")[1].split()[0])
    # +3 or +4 for +7 in three of seventeen runs: Piper's own median pitch moves between runs
    # (the estimator's roughness is left open, see README).
    assert 3 <= shift <= 10, result.stdout
    empty = subprocess.run([sys.executable, "-m", "agent", "rvc", "suggest-pitch", "-p", "default"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 1 and "needs the owner's recorded samples" in empty.stderr
