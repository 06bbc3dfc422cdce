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


# -- each rule, as a planter would break it (issue 23) -----------------------------------------------

@pytest.mark.parametrize(("accept", "wanted"), [
    ("audio/mpeg;q=0", "wav"),  # q=0 alone: nothing wanted, not mp3 (``>=`` for ``>``)
    ("audio/mpeg;q=0.5", "mp3"),  # any q above 0 counts (``> 1`` for ``> 0``)
    ("audio/flac;q=0.5,audio/mpeg", "mp3"),  # no space after the comma
    (", audio/flac", "flac"), (" ;q=1, audio/flac", "flac"),  # an empty entry is passed over, not the end
    ("audio/mpeg;q=1, audio/flac;q=1.5", "mp3"),  # q above 1 counts as 1: the first written
    ("audio/mpeg;q=1, audio/flac;q=abc", "mp3"),  # a q that is no number counts as 1, not more
    ("audio/mpeg;q=1, audio/flac", "mp3"),  # no q is 1, not more
    ("audio/mpeg;q=-1, audio/flac;q=0.1", "flac"),  # a negative q is 0
    ("audio/flac; q = 0.1, audio/mpeg;q=0.5", "mp3"),  # spaces around the q
    ("audio/flac;level=1;q=0.1, audio/mpeg;q=0.5", "mp3"),  # q after another parameter
    ("audio/flac;Q=0.1, audio/mpeg;q=0.5", "mp3"),  # the parameter's name in capitals
    ("audio/flac;q=1=1;q=0.1, audio/mpeg;q=0.5", "flac"),  # the first q decides, even one that is no number
    ("audio/opus", "opus"), ("audio/mp3", "mp3"), ("audio/x-flac", "flac"), ("audio/wave", "wav"),
    ("audio/vnd.wave", "wav"),
    ("audio/aac, */*;q=0.1", "wav"),  # a wildcard, however low, takes the default
    ("audio/*;q=0.5, audio/ogg;q=0.4", "wav"),
    ("audio/mpeg-x, audio/flac;q=0.1", "flac"), ("xaudio/mpeg", "wav"),  # look-alikes are not audio/mpeg
])
def test_accept_header_rules(accept: str, wanted: str) -> None:
    assert from_accept(accept) == wanted


def test_the_refusal_names_what_was_asked_and_what_is_written() -> None:
    from agent.speak.encoding import FORMATS

    with pytest.raises(ServiceError) as refused:
        from_accept("audio/webm;q=0.5, audio/aac, application/json")
    assert str(refused.value) == (
        "no audio format here is audio/aac, audio/webm; Accept one of audio/flac, audio/mp3, audio/mpeg, audio/ogg, "
        "audio/opus, audio/vnd.wave, audio/wav, audio/wave, audio/x-flac, audio/x-wav")
    assert refused.value.data == {"supported": list(FORMATS)}


def test_no_header_and_no_format_is_wav() -> None:
    assert format_of({}, None) == "wav" and format_of({"format": None}, "audio/ogg") == "opus"


def test_a_format_that_is_no_string_says_so() -> None:
    with pytest.raises(ServiceError) as refused:
        format_of({"format": ["mp3"]}, None)
    assert str(refused.value) == 'format: must be a string such as "mp3"'
