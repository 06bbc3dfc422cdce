"""The Wyoming voice naming scheme, and that an agent without the door never imports the library."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.voices.picks import VoicePick, parse_voice_name, profile_voice_name, voice_name
from agent.wyoming.names import voice_description
from agent.voices.listing import language_code


@pytest.mark.parametrize(
    ("name", "pick"),
    [
        (None, VoicePick("default")),
        ("", VoicePick("default")),
        ("piper:en_US-joe-medium", VoicePick("default", "piper", "en_US-joe-medium")),
        ("kitchen/kokoro:af_heart", VoicePick("kitchen", "kokoro", "af_heart")),
        ("kitchen/kokoro:af_heart:0.6,am_adam:0.4", VoicePick("kitchen", "kokoro", "af_heart:0.6,am_adam:0.4")),
        ("gpt-sovits:owner", VoicePick("default", "gpt-sovits", "owner")),
        ("en_US-joe-medium", VoicePick("default", None, "en_US-joe-medium")),  # what wyoming-piper users stored
        ("af_heart:0.6,am_adam:0.4", VoicePick("default", None, "af_heart:0.6,am_adam:0.4")),  # not a provider
        ("kitchen/", VoicePick("kitchen")),  # the profile's own voice
    ],
)
def test_parse_voice_name(name: str | None, pick: VoicePick) -> None:
    assert parse_voice_name(name) == pick


def test_listed_names_read_back() -> None:
    for profile in ("default", "kitchen"):
        name = voice_name(profile, "kokoro", "af_heart")
        assert parse_voice_name(name) == VoicePick(profile, "kokoro", "af_heart")
    assert voice_name("default", "piper", "en_US-joe-medium") == "piper:en_US-joe-medium"
    assert voice_description("kitchen", "piper", "en_US-joe-medium") == "kitchen: en_US-joe-medium (piper)"
    assert parse_voice_name(profile_voice_name("kitchen")) == VoicePick("kitchen")


def test_languages_are_spelled_as_wyoming_piper_does() -> None:
    assert [language_code(c) for c in ("en_US", "en-us", "pt-br", "ja", "cmn")] == ["en_US", "en_US", "pt_BR", "ja", "cmn"]


def test_the_agent_imports_the_wyoming_library_only_with_the_door_on() -> None:
    code = "import sys, agent.daemon; print(sorted(m for m in sys.modules if m.split('.')[0] in ('wyoming', 'sentence_stream', 'zeroconf')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
