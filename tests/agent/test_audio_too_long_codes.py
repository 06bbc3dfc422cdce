"""``audio_too_long`` at each door: bad input, like ``text_too_long`` (MQTT passes the code as is)."""

from __future__ import annotations

from agent.errors import ServiceError
from agent.http.errors import status_of
from agent.wyoming.speech import refusal


def test_http_answers_400() -> None:
    assert status_of("audio_too_long") == status_of("text_too_long") == 400


def test_wyoming_sends_the_code_and_the_reason() -> None:
    error = refusal(ServiceError("audio_too_long", "stopped: more than 300 s of audio"))
    assert (error.code, error.text) == ("audio_too_long", "stopped: more than 300 s of audio")
