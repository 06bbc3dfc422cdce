"""A recording sent as raw audio over HTTP (what the page's uploads send) takes its other fields
from the query string: the transcript and the source reach the ``record`` request as they would in
a JSON envelope, validated by the same model (an unknown field or a bad source is refused); a
recording that does not say where it came from came from ``http`` (not the MQTT door's default)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from agent.commands import Command, Reservation
from agent.record.requests import RecordRequest
from tests.agent.http.fake_core import fake_core
from tests.agent.http.test_audio_room import RECORD, send
from tests.agent.http.test_bodies import post


def told(profile: str, request: Any, out: Any) -> dict[str, Any]:
    return {"audio": len(request.audio or b""), "transcript": request.transcript, "source": request.source}


def core_with_the_real_model() -> Any:
    core = fake_core()

    def reserve(profile: str, size: int) -> Reservation:
        return Reservation(core.budget.hold(size), told)

    core.commands["record"] = Command(RecordRequest, told, reserve=reserve)
    return core


def test_the_query_gives_a_raw_recording_its_transcript_and_source() -> None:
    words = "Good morning, the kettle is on. Ça va?"
    path = f"{RECORD}?source=upload&transcript={quote(words)}"
    assert send(core_with_the_real_model(), post(path, b"RIFF" + b"\0" * 60, "audio/flac")) == \
        (200, {"data": {"audio": 64, "transcript": words, "source": "upload"}})


def test_without_a_query_a_raw_recording_has_no_transcript_and_comes_from_http() -> None:
    assert send(core_with_the_real_model(), post(RECORD, b"\0" * 8, "audio/wav")) == \
        (200, {"data": {"audio": 8, "transcript": None, "source": "http"}})


def test_a_json_recording_comes_from_http_unless_it_says_where() -> None:
    envelope = b'{"audio_b64": "AAAA"}'
    assert send(core_with_the_real_model(), post(RECORD, envelope, "application/json"))[1]["data"]["source"] == "http"
    said = b'{"audio_b64": "AAAA", "source": "web"}'
    assert send(core_with_the_real_model(), post(RECORD, said, "application/json"))[1]["data"]["source"] == "web"


def test_query_fields_are_checked_by_the_request_model() -> None:
    status, refused = send(core_with_the_real_model(), post(f"{RECORD}?source=no%20spaces", b"\0" * 8, "audio/wav"))
    assert (status, refused["code"]) == (400, "invalid_payload") and "source" in refused["error"]
    status, refused = send(core_with_the_real_model(), post(f"{RECORD}?speed=2", b"\0" * 8, "audio/wav"))
    assert (status, refused["code"]) == (400, "invalid_payload") and "speed" in refused["error"]
    status, refused = send(core_with_the_real_model(), post(f"{RECORD}?audio_b64=AAAA", b"\0" * 8, "audio/wav"))
    assert (status, refused["code"]) == (400, "invalid_payload")  # the body is the audio: not a second one


def test_the_body_is_the_audio_whatever_the_query_says() -> None:
    assert send(core_with_the_real_model(), post(f"{RECORD}?audio=tiny", b"\0" * 8, "audio/wav"))[1] == \
        {"data": {"audio": 8, "transcript": None, "source": "http"}}
