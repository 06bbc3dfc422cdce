"""agent/http/accept.py: the format a ``POST /api/tts`` wants, from its body or its Accept header."""

from __future__ import annotations

from typing import Any

import pytest

from agent.errors import ServiceError
from agent.http.accept import format_of, from_accept


@pytest.mark.parametrize(("accept", "wanted"), [
    ("audio/mpeg", "mp3"), ("audio/ogg", "opus"), ("audio/flac", "flac"), ("audio/wav", "wav"),
    ("audio/x-wav", "wav"), ("AUDIO/MPEG", "mp3"),
    ("audio/flac;q=0.5, audio/mpeg", "mp3"),  # the higher q wins, not the order
    ("audio/ogg, audio/mpeg", "opus"),  # equal q: the first written
    ("audio/mpeg;q=0, audio/flac", "flac"),  # q=0: "not this"
    ("*/*", "wav"), ("audio/*", "wav"), ("", "wav"), ("application/json", "wav"),
    ("audio/aac, audio/ogg;q=0.1", "opus"),  # the one it can write, however low
    ("audio/mpeg;q=0.2, */*;q=0.9", "wav"),  # a wildcard preferred: the default
])
def test_accept_header(accept: str, wanted: str) -> None:
    assert from_accept(accept) == wanted


@pytest.mark.parametrize("accept", ["audio/aac", "audio/aac, application/json", "audio/webm;q=1, audio/mpeg;q=0"])
def test_only_audio_it_cannot_write_is_refused(accept: str) -> None:
    with pytest.raises(ServiceError) as refused:
        from_accept(accept)
    assert refused.value.code == "unsupported_format" and "audio/mpeg" in str(refused.value)


@pytest.mark.parametrize(("document", "wanted"), [
    ({"format": "flac"}, "flac"), ({"format": "opus"}, "opus"), ({}, "mp3"),
])
def test_the_body_s_format_comes_before_the_header(document: dict[str, Any], wanted: str) -> None:
    assert format_of(document, "audio/mpeg") == wanted


@pytest.mark.parametrize(("value", "code"), [("aac", "unsupported_format"), ("ogg", "unsupported_format"),
                                             (3, "invalid_payload")])
def test_a_format_it_cannot_write_is_refused(value: Any, code: str) -> None:
    with pytest.raises(ServiceError) as refused:
        format_of({"format": value}, None)
    assert refused.value.code == code
