"""Hermes (agent/mqtt/hermes.py) in-process, rule by rule: the topics it hears and answers on, each
site's profile, the say's siteId, sessionId and id carried to the audio server, sayFinished and
the error, finished only once played (or timed out), the voices listing, the satellites'
recognition handed to the record path, and what is not Hermes left alone. The e2e tests
(tests/e2e/test_hermes.py) run the same through Mosquitto with a real voice."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ServiceError
from agent.mqtt.hermes import HermesBridge
from agent.settings import AgentSettings
from providers.base import ProviderError, ProviderUnavailableError
from tests.agent.mqtt.fakes import WAIT, Published, Transport, mqtt_core

SAY, SAY_FINISHED, TTS_ERROR = "hermes/tts/say", "hermes/tts/sayFinished", "hermes/error/tts"
GET_VOICES, VOICES = "rhasspy/tts/getVoices", "rhasspy/tts/voices"
SITES = {"hall-sat": "hall", "ghost-sat": "ghost", "odd-sat": "not a name"}


def made(tmp_path: Path, sites: dict[str, str] | None = None, profiles: dict[str, str] | None = None,
         **settings: Any) -> tuple[HermesBridge, Any, Transport]:
    core = mqtt_core({"default": "piper", "hall": "piper"} if profiles is None else profiles)
    transport = Transport()
    options = {"hermes_play_timeout": 600.0, **settings}
    settings_made = AgentSettings(home=tmp_path, hermes_sites=SITES if sites is None else sites, **options)
    bridge = HermesBridge(core, transport, settings_made)  # type: ignore[arg-type]
    return bridge, core, transport


def say(bridge: HermesBridge, text: str = "The kettle has boiled.", **fields: Any) -> None:
    assert bridge.on_message(SAY, json.dumps({"text": text, **fields}).encode())


def played(bridge: HermesBridge, request_id: str, site: str = "default") -> None:
    topic = f"hermes/audioServer/{site}/playFinished"
    assert bridge.on_message(topic, json.dumps({"id": request_id, "siteId": site, "sessionId": "any"}).encode())


def timer_of(request_id: str) -> threading.Timer:
    (timer,) = [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.args == (request_id, True)]
    return timer


def test_it_hears_tts_and_voices_and_the_recorded_sites_recognition(tmp_path: Path) -> None:
    tts = [(SAY, 1), (GET_VOICES, 1), ("hermes/audioServer/+/playFinished", 1)]
    asr = [("hermes/asr/startListening", 1), ("hermes/asr/textCaptured", 1), ("hermes/asr/stopListening", 1)]
    assert made(tmp_path, sites={})[0].subscriptions() == tts
    assert made(tmp_path)[0].subscriptions() == tts + asr
    assert made(tmp_path, hermes_tts=False)[0].subscriptions() == asr
    assert made(tmp_path, sites={}, hermes_tts=False)[0].subscriptions() == []


def test_a_site_speaks_with_its_profile_and_any_other_site_with_the_default(tmp_path: Path) -> None:
    bridge, _, _ = made(tmp_path, sites={"hall-sat": "hall"})
    assert bridge.profile_of("hall-sat") == "hall"
    assert bridge.profile_of("kitchen") == "default"
    assert bridge.profile_of("hall") == "default"  # a site id, not a profile name


def test_say_is_spoken_with_the_sites_profile_onto_its_audio_server_under_the_says_id(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    say(bridge, "Dinner is ready.", siteId="hall-sat", id="r1", sessionId="s1", lang="en-us", volume=0.5)
    called = core.calls.only("speak")
    assert called.profile == "hall"
    assert called.request.text == "Dinner is ready." and called.request.lang == "en-us"
    assert (called.request.stream, called.request.format, called.request.voice) == (False, "wav", None)
    topic = "hermes/audioServer/hall-sat/playBytes/r1"
    assert called.out.where("speak-1", False) == topic and called.out.where("speak-1", True) == topic
    called.out.chunk("speak-1", 0, b"RIFF one")  # a streamed sentence is a whole WAV too, on the same topic
    called.out.whole("speak-1", b"RIFF two")
    assert transport.sent == [Published(topic, b"RIFF one", 1, False), Published(topic, b"RIFF two", 1, False)]


def test_say_with_no_site_or_language_speaks_on_the_default_site_in_the_voices_language(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    say(bridge, "Hello.", id="r2")
    say(bridge, "Hello.", id="r3", lang="")  # an empty lang (a satellite that has none) is none
    say(bridge, "Hello.", id="r4", lang=None)
    assert [c.request.lang for c in core.calls.calls["speak"]] == [None, None, None] and transport.sent == []
    called = core.calls.calls["speak"][0]
    assert called.profile == "default"
    assert called.out.where("x", False) == "hermes/audioServer/default/playBytes/r2"


def test_a_say_without_an_id_is_given_one_that_its_audio_and_finish_carry(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    say(bridge, siteId="kitchen", sessionId="s9")
    say(bridge, siteId="kitchen")
    first, second = core.calls.calls["speak"]
    ids = [c.out.where("x", False).removeprefix("hermes/audioServer/kitchen/playBytes/") for c in (first, second)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
    first.answer.set_result({"provider": "piper", "voice": "amy"})
    played(bridge, ids[0], "kitchen")
    assert [p.json() for p in transport.on(SAY_FINISHED)] == [{"id": ids[0], "siteId": "kitchen", "sessionId": "s9"}]


def test_finished_is_said_once_the_site_has_played_it_and_only_once(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    bridge, core, transport = made(tmp_path)
    say(bridge, siteId="hall-sat", id="r3", sessionId="s3")
    say(bridge, siteId="hall-sat", id="r4")
    core.calls.calls["speak"][0].answer.set_result({"provider": "piper", "voice": "amy"})
    assert transport.on(SAY_FINISHED) == []  # made, not yet heard
    assert core.streams.own == [("started", "site:hall-sat")]  # its microphone may hear it now
    played(bridge, "r4", "hall-sat")  # not spoken yet: nothing to finish
    played(bridge, "r9", "hall-sat")
    assert bridge.on_message("hermes/audioServer/hall-sat/playFinished", b'{"siteId": "hall-sat"}')  # no id
    assert transport.on(SAY_FINISHED) == []
    with caplog.at_level(logging.DEBUG, "agent.mqtt.hermes"):
        played(bridge, "r3", "somewhere")  # the say's own site is told, whoever plays it
        played(bridge, "r3", "hall-sat")
    assert caplog.records == []  # played in time: no word of a timeout
    assert transport.on(SAY_FINISHED) == [
        Published(SAY_FINISHED, json.dumps({"id": "r3", "siteId": "hall-sat", "sessionId": "s3"}).encode(), 1, False)]
    assert core.streams.own == [("started", "site:hall-sat"), ("finished", "site:hall-sat")]


def test_a_malformed_play_finished_is_ignored_quietly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bridge, core, transport = made(tmp_path)
    with caplog.at_level(logging.DEBUG, "agent.mqtt.hermes"):
        assert bridge.on_message("hermes/audioServer/default/playFinished", b"{not json")
        assert bridge.on_message("hermes/audioServer/default/playFinished", b'{"id": 5}')
    assert caplog.records == [] and transport.sent == []  # other players' finishes are not ours to judge


def test_the_wait_for_played_is_a_daemon_timer_of_the_timeout_stopped_once_played(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path, hermes_play_timeout=120.0)
    say(bridge, siteId="hall-sat", id="r5")
    core.calls.only("speak").answer.set_result({"provider": "piper", "voice": "amy"})
    timer = timer_of("r5")
    assert timer.daemon and timer.interval == 120.0 and timer.is_alive()  # a silent satellite never holds up a stop
    played(bridge, "r5")
    timer.join(WAIT)
    assert not timer.is_alive()
    assert [p.json()["id"] for p in transport.on(SAY_FINISHED)] == ["r5"]


def test_a_satellite_that_never_says_it_played_is_finished_after_the_timeout(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bridge, core, transport = made(tmp_path, hermes_play_timeout=0.05)
    say(bridge, siteId="hall-sat", id="r6", sessionId="s6")
    with caplog.at_level(logging.WARNING, "agent.mqtt.hermes"):
        core.calls.only("speak").answer.set_result({"provider": "piper", "voice": "amy"})
        finished = transport.wait_for(SAY_FINISHED)
    assert finished == Published(SAY_FINISHED, json.dumps({"id": "r6", "siteId": "hall-sat", "sessionId": "s6"}).encode(),
                                 1, False)
    assert [r.getMessage() for r in caplog.records] == [
        "no playFinished for r6 from site hall-sat within 0.05 s: saying it finished"]
    assert core.streams.own == [("started", "site:hall-sat"), ("finished", "site:hall-sat")]
    played(bridge, "r6", "hall-sat")  # too late: said already
    assert len(transport.on(SAY_FINISHED)) == 1


def test_stop_forgets_what_is_playing_and_ends_its_timers(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    say(bridge, id="r7")
    say(bridge, id="r8")
    for called in core.calls.calls["speak"]:
        called.answer.set_result({"provider": "piper", "voice": "amy"})
    timers = [timer_of("r7"), timer_of("r8")]
    bridge.stop()
    for timer in timers:
        timer.join(WAIT)
        assert not timer.is_alive()
    played(bridge, "r7")
    assert transport.on(SAY_FINISHED) == []
    assert ("finished", "site:default") not in core.streams.own


def error_of(transport: Transport) -> dict[str, Any]:
    (error,) = transport.on(TTS_ERROR)
    assert (error.qos, error.retain) == (1, False)
    assert transport.on(SAY_FINISHED) == []
    return error.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("site", "refusal", "error"), [
    ("ghost-sat", None, "no profile 'ghost' (profiles are directories under profiles/)"),
    ("odd-sat", None, "profile name 'not a name' is not a plain identifier"),
    ("hall-sat", ServiceError("busy", "too many requests are waiting"), "too many requests are waiting"),
    ("hall-sat", ProviderUnavailableError("kokoro is not installed"), "kokoro is not installed"),
])
def test_a_refused_say_is_told_on_hermes_error_tts_with_its_site_session_and_text(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, site: str, refusal: Exception | None, error: str) -> None:
    bridge, core, transport = made(tmp_path)
    if refusal is not None:
        core.calls.refuse["speak"] = refusal
    with caplog.at_level(logging.WARNING, "agent.mqtt.hermes"):
        say(bridge, "Lights off.", siteId=site, id="e1", sessionId="s-e1")
    assert error_of(transport) == {"error": error, "siteId": site, "context": "Lights off.", "sessionId": "s-e1"}
    assert [r.getMessage() for r in caplog.records] == [f"hermes/tts/say for site {site} refused: {error}"]
    assert "speak" not in core.calls.calls and core.streams.own == []


def test_a_say_the_speak_command_refuses_is_an_error_with_the_first_200_characters(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    text = "".join(f"{i:04d} " for i in range(60))  # 300 characters
    say(bridge, text, lang="not a tag!")  # fits a Hermes lang, not a speak request's
    document = error_of(transport)
    assert document["context"] == text[:200] and document["sessionId"] is None and document["siteId"] == "default"
    assert document["error"].startswith("lang: String should match pattern")
    assert "speak" not in core.calls.calls


def test_a_missing_speak_command_is_an_error_not_a_crash(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    del core.commands["speak"]
    say(bridge, "Anyone?")
    assert error_of(transport)["error"].startswith("unknown command 'speak'; known: ")


def test_a_say_that_fails_while_spoken_is_an_error_and_never_finished(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    say(bridge, "Hello there.", siteId="hall-sat", id="f1", sessionId="s-f1")
    core.calls.only("speak").answer.set_exception(ProviderError("the engine died"))
    assert error_of(transport) == {"error": "the engine died", "siteId": "hall-sat", "context": "Hello there.",
                                   "sessionId": "s-f1"}
    assert core.streams.own == [] and not [t for t in threading.enumerate() if isinstance(t, threading.Timer)
                                           and t.args == ("f1", True)]


def test_a_fallback_voice_is_logged_with_what_spoke_and_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bridge, core, _ = made(tmp_path)
    say(bridge, siteId="hall-sat", id="b1")
    say(bridge, siteId="hall-sat", id="b2")
    first, second = core.calls.calls["speak"]
    with caplog.at_level(logging.WARNING, "agent.mqtt.hermes"):
        first.answer.set_result({"provider": "piper", "voice": "amy", "fallback": False})
        second.answer.set_result({"provider": "piper", "voice": "amy", "fallback": True,
                                  "fallback_code": "provider_unavailable", "fallback_reason": "no GPU here"})
    assert [r.getMessage() for r in caplog.records] == [
        "hermes/tts/say for site hall-sat spoken by piper/amy instead (provider_unavailable): no GPU here"]
    bridge.stop()


@pytest.mark.parametrize("payload", [
    b"{not json", b"[]", b'{"siteId": "hall-sat"}', b'{"text": ""}', b'{"text": 5}',
    json.dumps({"text": "x", "siteId": "s" * 129}).encode(), json.dumps({"text": "x", "id": "i" * 129}).encode(),
    json.dumps({"text": "x", "sessionId": "s" * 129}).encode(), json.dumps({"text": "x", "lang": "l" * 17}).encode(),
])
def test_a_malformed_say_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                    payload: bytes) -> None:
    bridge, core, transport = made(tmp_path)
    with caplog.at_level(logging.WARNING, "agent.mqtt.hermes"):
        assert bridge.on_message(SAY, payload)
    assert transport.sent == [] and core.calls.calls == {}
    (record,) = caplog.records
    assert record.getMessage().startswith("ignored a malformed Hermes message (Say): ")
    assert ("not valid JSON: " if payload == b"{not json" else "validation error") in record.getMessage()  # and why


def test_the_longest_fields_hermes_allows_are_spoken(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path, sites={"s" * 128: "hall"})
    say(bridge, "x", siteId="s" * 128, id="i" * 128, sessionId="e" * 128, lang="en-us")
    assert core.calls.only("speak").profile == "hall"


def test_the_voices_of_the_sites_profile_are_listed_for_rhasspy(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    assert bridge.on_message(GET_VOICES, json.dumps({"id": "v1", "siteId": "hall-sat", "sessionId": "x"}).encode())
    called = core.calls.only("voices")
    assert called.profile == "hall" and called.request.catalog is False and called.out is None
    assert (called.request.provider, called.request.language) == (None, "")
    assert transport.sent == []  # the listing is made on the samples' thread
    called.answer.set_result({"voices": [{"provider": "piper", "name": "amy", "language": "en_US"},
                                         {"provider": "kokoro", "name": "af_sky"}]})
    (answer,) = transport.sent
    assert (answer.topic, answer.qos, answer.retain) == (VOICES, 1, False)
    assert answer.json() == {"voices": [{"voiceId": "amy", "description": "piper en_US"},
                                        {"voiceId": "af_sky", "description": "kokoro"}],
                             "id": "v1", "siteId": "hall-sat"}


def test_a_failed_voices_listing_is_an_empty_one(tmp_path: Path) -> None:
    bridge, core, transport = made(tmp_path)
    assert bridge.on_message(GET_VOICES, b"{}")
    core.calls.only("voices").answer.set_exception(RuntimeError("no engines"))
    assert [p.json() for p in transport.on(VOICES)] == [{"voices": [], "id": None, "siteId": "default"}]
    assert core.calls.only("voices").profile == "default"


def test_voices_for_a_site_without_its_profile_are_not_answered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bridge, core, transport = made(tmp_path)
    with caplog.at_level(logging.WARNING, "agent.mqtt.hermes"):
        assert bridge.on_message(GET_VOICES, json.dumps({"id": "v2", "siteId": "ghost-sat"}).encode())
        assert bridge.on_message(GET_VOICES, b"{not json")
    assert transport.sent == [] and core.calls.calls == {}
    assert [r.getMessage() for r in caplog.records][0] == (
        "rhasspy/tts/getVoices for ghost-sat refused: no profile 'ghost' (profiles are directories under profiles/)")
    assert caplog.records[1].getMessage().startswith("ignored a malformed Hermes message (HermesMessage): ")


def test_a_recorded_sites_recognition_goes_to_the_record_path(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bridge, core, _ = made(tmp_path, hermes_tts=False)
    for topic, document in [
        ("hermes/asr/startListening", {"siteId": "den-sat", "sessionId": "a1"}),
        ("hermes/asr/textCaptured", {"siteId": "den-sat", "sessionId": "a1", "text": "Lights on.", "likelihood": 0.9}),
        ("hermes/asr/stopListening", {"siteId": "den-sat", "sessionId": "a1"}),
        ("hermes/asr/textCaptured", {"text": "No site."}),
    ]:
        assert bridge.on_message(topic, json.dumps(document).encode())
    assert core.streams.asr == [("den-sat", "listening", ""), ("den-sat", "heard", "Lights on."),
                                ("den-sat", "stopped", ""), ("default", "heard", "No site.")]
    with caplog.at_level(logging.WARNING, "agent.mqtt.hermes"):
        assert bridge.on_message("hermes/asr/textCaptured", json.dumps({"text": "x" * 2001}).encode())
    assert len(core.streams.asr) == 4
    assert caplog.records[0].getMessage().startswith("ignored a malformed Hermes message (Captured): ")
    assert bridge.on_message("hermes/asr/textCaptured", json.dumps({"text": "x" * 2000}).encode())
    assert len(core.streams.asr) == 5


@pytest.mark.parametrize("topic", [
    "hermes/tts/sayFinished", "hermes/tts/say/more", "hermes/error/tts", "rhasspy/tts/voices", "rhasspy/tts/getVoices/x",
    "hermes/audioServer/default/playBytes/r1", "hermes/audioServer/default/playFinishedToo",
    "other/hermes/audioServer/default/playFinished", "hermes/asr/textCaptured/x", "hermes/asr/startSession",
    "voice/default/request/speak",
])
def test_what_is_not_a_hermes_message_of_ours_is_left_to_the_others(tmp_path: Path, topic: str) -> None:
    bridge, core, transport = made(tmp_path)
    payload = json.dumps({"text": "Hi.", "id": "r1", "siteId": "hall-sat"}).encode()
    assert bridge.on_message(topic, payload) is False
    assert transport.sent == [] and core.calls.calls == {} and core.streams.asr == []
