"""The ``describe`` answer (agent/wyoming/info.py) and the names in it (agent/wyoming/names.py):
each profile's own voice first, under every language its voices speak, then its voices by
provider, with the descriptions Home Assistant's picker sorts by; a profile whose voices cannot
be listed is left out of the list, not the whole answer."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from agent import __version__
from agent.commands import Command
from agent.voices.catalog import Catalog
from agent.voices.listing import listing
from agent.voices.requests import VoicesRequest
from agent.wyoming.info import PROGRAM, describe
from agent.voices.picks import VoicePick, parse_voice_name
from agent.wyoming.names import voice_description

CARD = "https://huggingface.co/rhasspy/piper-voices/blob/v1.0.0/en/en_US/lessac/medium/MODEL_CARD"
LISTINGS: dict[str, list[dict[str, Any]]] = {
    "default": [{"provider": "piper", "name": "en_US-joe-medium", "language": "en-us", "attribution": CARD},
                {"provider": "kokoro", "name": "jf_alpha", "language": "ja"},
                {"provider": "piper", "name": "en_GB-vctk-medium", "language": "en_GB", "installed": False,
                 "size": 76_734_000, "speaker_names": ["p225", "p226"], "attribution": CARD},
                {"provider": "kokoro", "name": "af_heart", "language": "en_US", "installed": False, "size": 0,
                 "speaker_names": ["af_heart"]}],
    "kitchen": [{"provider": "kokoro", "name": "bf_emma", "language": "en-GB"}, {"provider": "rvc", "name": "owner"}],
}


def voices(profile: str, request: Any, out: Any) -> Any:
    assert isinstance(request, VoicesRequest)
    assert request.catalog is (profile == "default")  # the catalog once, not once per profile
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


def described(*profiles: str, on_demand: bool = True) -> Any:
    return asyncio.run(describe(Command(VoicesRequest, voices), list(profiles), on_demand)).tts[0]


def test_the_program_lists_each_profiles_own_voice_then_its_voices() -> None:
    program = described("default", "kitchen")
    assert (program.name, program.version, program.installed) == (PROGRAM, __version__, True)
    assert program.attribution.name == PROGRAM and program.supports_synthesize_streaming is True
    assert program.description == "voice-agent: the household's voices (default, kitchen)"
    listed = [(v.name, v.description, v.languages, v.attribution.name, v.installed, v.version) for v in program.voices]
    assert [v.attribution.url for v in program.voices[1:5]] == [CARD, "", CARD, ""]
    assert listed == [
        ("default/", "default: its own voice (voice.json)", ["en_US", "ja"], PROGRAM, True, None),
        ("piper:en_US-joe-medium", "en_US-joe-medium (piper)", ["en_US"], "piper", True, None),
        ("kokoro:jf_alpha", "jf_alpha (kokoro)", ["ja"], "kokoro", True, None),
        ("piper:en_GB-vctk-medium", "en_GB-vctk-medium (piper, download 77 MB)", ["en_GB"], "piper", True, None),
        ("kokoro:af_heart", "af_heart (kokoro, download size unknown)", ["en_US"], "kokoro", True, None),
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


def test_a_catalog_voice_is_installed_for_home_assistant_only_while_downloads_are_on() -> None:
    """Home Assistant offers only voices marked installed (as wyoming-piper marks its catalog): a
    catalog voice is one while a synthesize would fetch it, and not once downloads are off."""
    on = {v.name: v.installed for v in described("default").voices}
    off = {v.name: v.installed for v in described("default", on_demand=False).voices}
    assert on["piper:en_GB-vctk-medium"] is True and on["kokoro:af_heart"] is True
    assert off["piper:en_GB-vctk-medium"] is False and off["kokoro:af_heart"] is False
    assert off["piper:en_US-joe-medium"] is True and off["default/"] is True


def test_a_multi_speaker_voice_lists_its_speakers_by_name_and_one_speaker_lists_none() -> None:
    by_name = {v.name: v.speakers for v in described("default").voices}
    assert [s.name for s in by_name["piper:en_GB-vctk-medium"]] == ["p225", "p226"]
    assert by_name["kokoro:af_heart"] is None and by_name["piper:en_US-joe-medium"] is None


def test_the_own_voice_speaks_the_languages_of_installed_voices_only() -> None:
    assert described("default").voices[0].languages == ["en_US", "ja"]  # not en_GB, the download's


def test_the_whole_catalog_makes_a_bounded_answer() -> None:
    """The real catalogs (176 Piper + 54 Kokoro voices, the speakers of every multi-speaker voice)
    under three profiles: listed once, about 116 kB, not once per profile."""
    catalog = Catalog({}, Path("/nonexistent"))

    def real(profile: str, request: Any, out: Any) -> Any:
        return {"voices": listing([], catalog, with_catalog=request.catalog)}

    info = asyncio.run(describe(Command(VoicesRequest, real), ["default", "kitchen", "office"]))
    size = len(json.dumps(info.event().data))
    assert len(info.tts[0].voices) == 3 + 230
    assert 50_000 < size < 200_000
    lessac = next(v for v in info.tts[0].voices if v.name == "piper:en_US-lessac-medium")
    assert lessac.attribution.url.endswith("/en/en_US/lessac/medium/MODEL_CARD") and lessac.languages == ["en_US"]
