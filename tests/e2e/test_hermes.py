"""Rhasspy/Hermes satellites end to end through Mosquitto: hermes/tts/say is spoken to the site's
audio server and finished only once played; recognised text becomes the sample's transcript."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.audio_checks import assert_speech, wav_info
from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.mosquitto import Mosquitto
from tests.speech import OWNER_RATE, owner, wav, with_silence

pytestmark = pytest.mark.slow

BASE = "hermes-e2e"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    # den records, hall speaks slowly, porch hears what it says: none of them disturbs the others
    home = make_home(tmp_path_factory.mktemp("hermes"), profiles=("default", "den", "hall", "porch"))
    write_json(home / "profiles" / "hall" / "etc" / "voice.json", {"tts": {"piper": {"speakingRate": 0.5}}})
    process = AgentProcess(home, broker.port, {
        "VOICE_AGENT_BASE_TOPIC": BASE,
        "VOICE_AGENT_HERMES_SITES": json.dumps({"den-sat": "den", "hall-sat": "hall", "porch-sat": "porch"}),
        "VOICE_AGENT_HERMES_PLAY_TIMEOUT": "2",
        "VOICE_AGENT_HERMES_TTS": "true",  # the agent's default (tests/conftest.py turns it off for the others)
    }).start()
    process.wait_log("ready")
    yield process
    process.stop()


@pytest.fixture()
def hermes(broker: Mosquitto) -> Iterator[Probe]:
    client = Probe(broker.port, base="hermes")
    yield client
    client.close()


@pytest.fixture()
def voice(broker: Mosquitto) -> Iterator[Probe]:
    client = Probe(broker.port, base=BASE)
    yield client
    client.close()


def say(hermes: Probe, request_id: str, site: str = "default", text: str = "The kettle has boiled.") -> None:
    hermes.publish("hermes/tts/say", json.dumps({"text": text, "siteId": site, "id": request_id, "sessionId": f"s-{request_id}",
                                                 "lang": "en-us", "volume": 1.0}))


def finished(hermes: Probe, request_id: str, timeout: float = 30, after: int = 0) -> dict:
    return json.loads(hermes.wait_for(
        lambda t, p: t == "hermes/tts/sayFinished" and json.loads(p)["id"] == request_id, timeout, after)[1])


def test_say_plays_on_the_site_and_finishes_after_it_was_played(agent: AgentProcess, hermes: Probe) -> None:
    say(hermes, "r1")
    audio = hermes.wait_topic("hermes/audioServer/default/playBytes/r1", timeout=60)
    assert_speech(audio, min_seconds=0.5)
    time.sleep(0.5)  # the satellite is still playing: the agent must not say it finished
    assert not any(t == "hermes/tts/sayFinished" for t, _, _ in hermes.seen)
    hermes.publish("hermes/audioServer/default/playFinished", json.dumps({"id": "r1", "sessionId": "s-r1"}))
    assert finished(hermes, "r1", timeout=10) == {"id": "r1", "siteId": "default", "sessionId": "s-r1"}


def test_a_satellite_that_never_says_it_played_still_gets_finished(agent: AgentProcess, hermes: Probe) -> None:
    say(hermes, "r2")
    hermes.wait_topic("hermes/audioServer/default/playBytes/r2", timeout=60)
    started = time.monotonic()
    assert finished(hermes, "r2", timeout=10)["siteId"] == "default"
    assert time.monotonic() - started > 1.0  # after VOICE_AGENT_HERMES_PLAY_TIMEOUT (2 s), not at once


def test_a_site_speaks_with_its_profiles_voice(agent: AgentProcess, hermes: Probe) -> None:
    text = "The same words on two satellites."
    say(hermes, "plain", "default", text)
    say(hermes, "slow", "hall-sat", text)  # hall speaks at half speed
    plain = wav_info(hermes.wait_topic("hermes/audioServer/default/playBytes/plain", timeout=60))[1]
    slow = wav_info(hermes.wait_topic("hermes/audioServer/hall-sat/playBytes/slow", timeout=60))[1]
    assert 1.6 < slow / plain < 2.4


def test_errors_go_to_hermes_error_tts(agent: AgentProcess, hermes: Probe) -> None:
    say(hermes, "long", "default", "word " * 2000)
    error = json.loads(hermes.wait_topic("hermes/error/tts", timeout=30))
    assert error["siteId"] == "default" and error["sessionId"] == "s-long" and "5000" in error["error"]
    hermes.publish("hermes/tts/say", b"{not json")
    say(hermes, "after", "default", "Still speaking.")
    assert_speech(hermes.wait_topic("hermes/audioServer/default/playBytes/after", timeout=60))


def test_voices_are_listed_for_rhasspy(agent: AgentProcess, broker: Mosquitto) -> None:
    rhasspy = Probe(broker.port, base="rhasspy")
    try:
        rhasspy.publish("rhasspy/tts/getVoices", json.dumps({"id": "v1", "siteId": "hall-sat"}))
        answer = json.loads(rhasspy.wait_topic("rhasspy/tts/voices", timeout=30))
        assert answer["id"] == "v1" and answer["siteId"] == "hall-sat"
        assert "en_US-joe-medium" in [v["voiceId"] for v in answer["voices"]]
        assert "en_US-lessac-medium" not in [v["voiceId"] for v in answer["voices"]]  # say names no voice: installed only
    finally:
        rhasspy.close()


def frames(text: str) -> list[bytes]:
    import soxr

    speech = soxr.resample(with_silence(owner(text), OWNER_RATE, 1.0), OWNER_RATE, 16000).astype(np.float32)
    return [wav(speech[i : i + 512], 16000) for i in range(0, len(speech), 512)]


def transcript_of_captured(voice: Probe, after: int) -> str | None:
    captured = json.loads(voice.wait_for(lambda t, p: t == f"{BASE}/den/event/sample.captured", 120, after)[1])["data"]
    shown = voice.request("den", "samples.show", {"sample": captured["id"]})
    return shown["data"]["sample"]["transcript"]  # type: ignore[no-any-return]


def test_recognised_text_becomes_the_samples_transcript(agent: AgentProcess, hermes: Probe, voice: Probe) -> None:
    text = "Please turn on the lights in the living room."
    mark = voice.mark()
    hermes.publish("hermes/asr/startListening", json.dumps({"siteId": "den-sat", "sessionId": "asr-1"}))
    for frame in frames(text):
        hermes.publish("hermes/audioServer/den-sat/audioFrame", frame)
    time.sleep(0.5)  # recognition takes a moment; the utterance is cut meanwhile
    hermes.publish("hermes/asr/textCaptured", json.dumps({"text": text, "siteId": "den-sat", "sessionId": "asr-1",
                                                          "likelihood": 0.9, "seconds": 3.1}))
    hermes.publish("hermes/asr/stopListening", json.dumps({"siteId": "den-sat", "sessionId": "asr-1"}))
    assert transcript_of_captured(voice, mark) == text


def test_text_that_comes_before_its_utterance_ends_waits_for_it(agent: AgentProcess, hermes: Probe, voice: Probe) -> None:
    text = "Remind me to call grandma on Sunday afternoon."
    mark = voice.mark()
    sent = frames(text)
    for frame in sent[:-20]:  # the speech, not yet the silence after it that ends the utterance
        hermes.publish("hermes/audioServer/den-sat/audioFrame", frame)
    hermes.publish("hermes/asr/textCaptured", json.dumps({"text": text, "siteId": "den-sat", "sessionId": "asr-2"}))
    for frame in sent[-20:]:
        hermes.publish("hermes/audioServer/den-sat/audioFrame", frame)
    assert transcript_of_captured(voice, mark) == text


def test_what_the_satellite_hears_of_the_agent_is_not_a_sample(agent: AgentProcess, hermes: Probe, voice: Probe) -> None:
    """The porch satellite plays the agent's answer and its microphone hears it: not the owner."""
    mark = voice.mark()
    say(hermes, "echo", "porch-sat", "Good evening, the porch light is on now.")
    hermes.wait_topic("hermes/audioServer/porch-sat/playBytes/echo", timeout=60)
    for frame in frames("Good evening, the porch light is on now."):  # heard while it plays
        hermes.publish("hermes/audioServer/porch-sat/audioFrame", frame)
    rejected = voice.wait_for(lambda t, p: t == f"{BASE}/porch/event/sample.rejected", 60, mark)
    assert "its own voice" in json.loads(rejected[1])["data"]["reasons"][0]
    hermes.publish("hermes/audioServer/porch-sat/playFinished", json.dumps({"id": "echo"}))
    finished(hermes, "echo", timeout=10)
    time.sleep(6.0)  # past the played audio, its tail and the speak.finished window
    mark = voice.mark()
    for frame in frames("And this is the owner speaking on the porch afterwards."):
        hermes.publish("hermes/audioServer/porch-sat/audioFrame", frame)
    voice.wait_for(lambda t, p: t == f"{BASE}/porch/event/sample.captured", 120, mark)
