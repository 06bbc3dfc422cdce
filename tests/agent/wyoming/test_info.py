"""The ``describe`` answer (agent/wyoming/info.py) and the names in it (agent/wyoming/names.py):
each profile's own voice first, under every language its voices speak, then its voices by
provider, with the descriptions Home Assistant's picker sorts by; a profile whose voices cannot
be listed is left out of the list, not the whole answer."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Any

import pytest

from agent import __version__
from agent.commands import Command
from agent.requests import EmptyRequest
from agent.wyoming.info import PROGRAM, describe
from agent.wyoming.names import VoicePick, parse_voice_name, voice_description

LISTINGS: dict[str, list[dict[str, Any]]] = {
    "default": [{"provider": "piper", "name": "en_US-joe-medium", "language": "en-us"},
                {"provider": "kokoro", "name": "jf_alpha", "language": "ja"}],
    "kitchen": [{"provider": "kokoro", "name": "bf_emma", "language": "en-GB"}, {"provider": "rvc", "name": "owner"}],
}


def voices(profile: str, request: Any, out: Any) -> Any:
    assert isinstance(request, EmptyRequest)
    assert out.where("r", True) == "" and out.chunk("r", 0, b"") is None and out.whole("r", b"") is None
    if profile == "empty":
        return {}
    if profile == "broken":
        raise RuntimeError("voices.json unreadable")
    answer = {"voices": LISTINGS[profile]}
    if profile == "kitchen":  # answered later, as a Future
        later: Future[dict[str, Any]] = Future()
        later.set_result(answer)
        return later
    return answer


def described(*profiles: str) -> Any:
    return asyncio.run(describe(Command(EmptyRequest, voices), list(profiles))).tts[0]


def test_the_program_lists_each_profiles_own_voice_then_its_voices() -> None:
    program = described("default", "kitchen")
    assert (program.name, program.version, program.installed) == (PROGRAM, __version__, True)
    assert program.attribution.name == PROGRAM and program.supports_synthesize_streaming is True
    assert program.description == "voice-agent: the household's voices (default, kitchen)"
    listed = [(v.name, v.description, v.languages, v.attribution.name, v.installed, v.version) for v in program.voices]
    assert {v.attribution.url for v in program.voices} | {program.attribution.url} == {""}
    assert listed == [
        ("default/", "default: its own voice (voice.json)", ["en_US", "ja"], PROGRAM, True, None),
        ("piper:en_US-joe-medium", "en_US-joe-medium (piper)", ["en_US"], "piper", True, None),
        ("kokoro:jf_alpha", "jf_alpha (kokoro)", ["ja"], "kokoro", True, None),
        ("kitchen/", "kitchen: its own voice (voice.json)", ["en_GB"], PROGRAM, True, None),
        ("kitchen/kokoro:bf_emma", "kitchen: bf_emma (kokoro)", ["en_GB"], "kokoro", True, None),
        ("kitchen/rvc:owner", "kitchen: owner (rvc)", [], "rvc", True, None),
    ]


def test_a_profile_whose_voices_fail_is_only_its_own_voice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "agent.wyoming.info"):
        program = described("broken", "default")
    assert [v.name for v in program.voices][:2] == ["broken/", "default/"]
    assert program.voices[0].languages == []
    assert [r.getMessage() for r in caplog.records] == [
        "cannot list the voices of broken for Wyoming: voices.json unreadable"]


def test_no_profiles_says_so() -> None:
    program = described()
    assert program.voices == [] and program.description == "voice-agent: the household's voices (no profiles)"


def test_only_the_first_slash_ends_the_profile_and_default_voices_have_no_profile() -> None:
    assert parse_voice_name("kitchen/piper:a/b") == VoicePick("kitchen", "piper", "a/b")
    assert voice_description("default", "piper", "amy") == "amy (piper)"


def test_a_profile_that_answers_no_list_has_only_its_own_voice() -> None:
    assert [v.name for v in described("empty").voices] == ["empty/"]
