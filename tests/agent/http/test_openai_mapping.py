"""agent/http/openai.py in process: an OpenAI body as the speak request it becomes, and the
agent's refusals in OpenAI's error shape."""

from __future__ import annotations

from typing import Any

import pytest

from agent.errors import ServiceError
from agent.http.openai import error_body, parse, speak_document


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "tts-1", "voice": "alloy", "input": "Hello.", **fields}


def test_a_plain_request_is_the_profile_s_own_voice_streamed() -> None:
    assert speak_document(parse(body()), {}) == ("default", {"text": "Hello.", "stream": True, "format": "mp3"})
    assert speak_document(parse(body(response_format="pcm")), {})[1]["format"] == "pcm"


def test_voice_model_and_speed_are_sent_on() -> None:
    profile, document = speak_document(parse(body(voice="kitchen/nova", model="piper", speed=1.5,
                                                   instructions="Cheerful.", unknown_field=1)),
                                       {"nova": "en_US-lessac-medium"})
    assert profile == "kitchen"
    assert document == {"text": "Hello.", "stream": True, "provider": "piper", "voice": "en_US-lessac-medium",
                        "speed": 1.5, "format": "mp3"}


@pytest.mark.parametrize(("fields", "param"), [
    ({"input": "x" * 4097}, "input"), ({"speed": 4.5}, "speed"), ({"stream_format": "mp3"}, "stream_format"),
    ({"voice": ""}, "voice"), ({"model": None}, "model"),
])
def test_bodies_outside_openai_s_api_are_refused_with_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(ServiceError) as refused:
        parse(body(**fields))
    assert refused.value.code == "invalid_payload"
    assert error_body(refused.value.code, str(refused.value), refused.value.data)["param"] == param


@pytest.mark.parametrize(("code", "status", "kind"), [
    ("voice_not_found", 404, "not_found_error"), ("unauthorized", 401, "authentication_error"),
    ("unsupported_format", 400, "invalid_request_error"), ("busy", 429, "rate_limit_error"),
    ("provider_unavailable", 503, "server_error"),
])
def test_error_shape(code: str, status: int, kind: str) -> None:
    assert error_body(code, "why", {"param": "voice"}) == {"message": "why", "type": kind, "param": "voice", "code": code}
    assert error_body(code, "why")["param"] is None
