"""The speak path end to end: MQTT request -> real agent -> Piper -> audio and events on MQTT."""

from __future__ import annotations

import json
import time

import pytest

from tests.audio_checks import FIRST_PART_SECONDS, assert_speech
from tests.conftest import AgentProcess, Probe, garbled_voicepack, write_json
from tests.mosquitto import Mosquitto


def test_speak_publishes_wav_response_and_events(running_agent: AgentProcess, probe: Probe) -> None:
    started = time.perf_counter()
    response = probe.request("default", "speak", {"id": "plain-1", "text": "Hello from the voice agent."})
    wall_ms = (time.perf_counter() - started) * 1000

    assert response["status"] == "ok", response
    assert response["id"] == "plain-1"
    data = response["data"]
    assert data["provider"] == "piper" and data["voice"] == "en_US-joe-medium"
    assert data["cached"] is False and data["fallback"] is False
    seconds = assert_speech(probe.wait_topic("voice/default/audio/plain-1"), min_seconds=1.0)
    assert data["audio_seconds"] == pytest.approx(seconds, abs=0.01)
    assert probe.event("default", "speak.started", "plain-1")["data"]["provider"] == "piper"
    finished = probe.event("default", "speak.finished", "plain-1")["data"]
    assert finished["audio_seconds"] == data["audio_seconds"]
    # measured inside the agent: first audio before all of it, all of it before the answer reached us
    assert 0 < finished["first_audio_ms"] <= finished["latency_ms"] < wall_ms


def test_speak_without_id_gets_one(running_agent: AgentProcess, probe: Probe) -> None:
    response = probe.request("default", "speak", b'{"text": "No id given."}')
    assert response["status"] == "ok"
    assert response["id"]
    assert_speech(probe.wait_topic(f"voice/default/audio/{response['id']}"))


def test_stream_sends_one_wav_per_sentence(running_agent: AgentProcess, probe: Probe) -> None:
    text = "The first sentence is here. Then comes a second one! And is this the third?"
    response = probe.request("default", "speak", {"id": "stream-1", "text": text, "stream": True})

    assert response["status"] == "ok", response
    chunks = response["data"]["chunks"]
    seconds = [assert_speech(probe.wait_topic(f"voice/default/audio/stream-1/{seq}")) for seq in range(chunks)]
    assert chunks == 3 or (chunks == 4 and seconds[0] == pytest.approx(FIRST_PART_SECONDS, abs=0.01)), seconds
    assert sum(seconds) == pytest.approx(response["data"]["audio_seconds"], abs=0.01)
    assert not any(t == "voice/default/audio/stream-1" for t, _, _ in probe.seen), "stream also sent a whole WAV"


def test_repeated_request_is_served_from_cache(running_agent: AgentProcess, probe: Probe) -> None:
    text = "This sentence should be cached on disk."
    first = probe.request("default", "speak", {"id": "cache-1", "text": text})
    second = probe.request("default", "speak", {"id": "cache-2", "text": text})

    assert first["data"]["cached"] is False and second["data"]["cached"] is True
    assert probe.wait_topic("voice/default/audio/cache-1") == probe.wait_topic("voice/default/audio/cache-2")
    cache_dir = running_agent.home / "profiles" / "default" / "out" / "cache" / "tts"
    assert len(list(cache_dir.glob("*.wav"))) >= 1
    # a different speed is different audio: not a cache hit
    third = probe.request("default", "speak", {"id": "cache-3", "text": text, "speed": 1.5})
    assert third["data"]["cached"] is False


def test_speed_changes_duration(running_agent: AgentProcess, probe: Probe) -> None:
    text = "Speed changes how long this takes to say."
    normal = probe.request("default", "speak", {"id": "speed-1", "text": text, "speed": 1.0})
    slow = probe.request("default", "speak", {"id": "speed-2", "text": text, "speed": 0.5})
    ratio = slow["data"]["audio_seconds"] / normal["data"]["audio_seconds"]
    assert 1.6 < ratio < 2.4, ratio


def test_fallback_to_piper_when_provider_fails(running_agent: AgentProcess, probe: Probe) -> None:
    # Kokoro cannot read this voice: the request falls back to Piper and says why.
    garbled_voicepack(running_agent.home, "default", "garbled_voice")
    response = probe.request(
        "default", "speak", {"id": "fb-1", "text": "Falling back.", "provider": "kokoro", "voice": "garbled_voice"}
    )

    assert response["status"] == "ok", response
    assert response["data"]["provider"] == "piper" and response["data"]["fallback"] is True
    event = probe.event("default", "provider.fallback", "fb-1")["data"]
    assert event["from"] == "kokoro" and "garbled_voice" in event["reason"] and "cannot read" in event["reason"]
    assert_speech(probe.wait_topic("voice/default/audio/fb-1"))


def test_a_voice_the_request_names_that_is_nowhere_is_an_error_not_a_fallback(running_agent: AgentProcess,
                                                                               probe: Probe) -> None:
    response = probe.request(
        "default", "speak", {"id": "fb-2", "text": "No.", "provider": "kokoro", "voice": "no_such_kokoro_voice"}
    )
    assert response["status"] == "error" and response["code"] == "voice_not_found", response


def test_no_fallback_when_disabled(running_agent: AgentProcess, probe: Probe) -> None:
    garbled_voicepack(running_agent.home, "kitchen", "garbled_voice")
    config = running_agent.home / "profiles" / "kitchen" / "etc" / "voice.json"
    write_json(config, {"tts": {"kokoro": {"autoFallbackToPiper": False, "voice": "garbled_voice"}}})
    probe.event("kitchen", "config.reloaded", timeout=10)

    response = probe.request("kitchen", "speak", {"id": "nofb-1", "text": "No fallback.", "provider": "kokoro"})

    assert response["status"] == "error" and response["code"] == "provider_error", response
    assert "garbled_voice" in response["error"]
    assert probe.event("kitchen", "speak.failed", "nofb-1")["data"]["provider"] == "kokoro"


def test_unknown_voice_is_a_clear_error(running_agent: AgentProcess, probe: Probe) -> None:
    response = probe.request("default", "speak", {"id": "voice-1", "text": "Hi.", "voice": "no_such_voice"})
    assert response["status"] == "error" and response["code"] == "voice_not_found"
    assert "no_such_voice" in response["error"] and "out/voices" in response["error"]


def test_state_counts_the_request_being_spoken_and_is_retained(running_agent: AgentProcess, probe: Probe, broker: Mosquitto) -> None:
    probe.request("default", "speak", {"id": "state-1", "text": "Counting the queue."})

    def depths() -> list[int]:
        return [json.loads(p)["queue_depth"] for t, p, _ in probe.seen if t == "voice/default/state"]

    deadline = time.monotonic() + 10
    while not (1 in depths() and depths()[-1] == 0 and depths().index(1) < len(depths()) - 1):
        assert time.monotonic() < deadline, depths()
        time.sleep(0.02)
    late = Probe(broker.port)  # a client that connects later gets the retained documents
    try:
        state = json.loads(late.wait_topic("voice/default/state"))
        assert (state["provider"], state["voice"], state["queue_depth"]) == ("piper", "en_US-joe-medium", 0)
        assert any(t == "voice/status" and p == b"online" and retained for t, p, retained in late.seen)
    finally:
        late.close()


def test_voices_and_config_commands(running_agent: AgentProcess, probe: Probe) -> None:
    voices = probe.request("default", "voices", {})
    assert voices["status"] == "ok"
    assert "en_US-joe-medium" in [v["name"] for v in voices["data"]["voices"]]
    config = probe.request("default", "config", {})
    assert config["data"]["config"]["tts"]["piper"]["model"] == "en_US-joe-medium"
    assert config["data"]["config"]["cache"]["maxSizeMB"] > 0
