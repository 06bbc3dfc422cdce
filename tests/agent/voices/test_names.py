"""The voice-name check behind config.set and a voice.json reload (agent/voices/names.py), with the
real catalogs and stand-in installed voices: nothing is loaded."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from agent.config.model import ConfigProblem, VoiceConfig
from agent.voices.catalog import Catalog
from agent.voices.installed import InstalledVoices
from agent.voices.names import VoiceNames
from providers.base import ProviderContext, VoiceInfo
from tests.contexts import loose_context

INSTALLED = {"piper": ["en_US-joe-medium", "household"], "kokoro": ["jf_alpha", "owner"]}


@pytest.fixture()
def check(tmp_path: Path) -> VoiceNames:
    ctx = loose_context(tmp_path, (tmp_path / "voices",))

    def installed(provider: str, _: ProviderContext) -> list[VoiceInfo]:
        return [VoiceInfo(name, provider) for name in INSTALLED[provider]]

    return VoiceNames(Catalog({}, tmp_path / "catalog"), InstalledVoices(installed), lambda profile: ctx)


def problems(check: VoiceNames, tts: dict[str, object]) -> list[ConfigProblem]:
    return check.problems("me", VoiceConfig.model_validate({"tts": tts}))


@pytest.mark.parametrize("tts", [
    {},  # the defaults: Piper's bundled voice, Kokoro's language voice
    {"piper": {"model": "household"}},  # installed
    {"piper": {"model": "household.onnx"}},
    {"piper": {"model": "en_US-lessac-medium"}},  # in the catalog: a download fetches it
    {"piper": {"model": "en_US-lessac-medium"}, "kokoro": {"voice": "af_heart:0.6,owner:0.4"}},
    {"kokoro": {"voice": "jf_alpha"}},
    {"rvc": {"baseVoice": "household"}},
    {"rvc": {"baseProvider": "kokoro", "baseVoice": "am_adam"}},
])
def test_installed_and_catalog_voices_pass(check: VoiceNames, tts: dict[str, object]) -> None:
    assert problems(check, tts) == []


def test_a_typo_is_voice_not_found_with_the_closest_name(check: VoiceNames) -> None:
    [found] = problems(check, {"piper": {"model": "en_US-lessac-medum"}})
    assert (found.field, found.code) == ("tts.piper.model", "voice_not_found")
    assert "did you mean en_US-lessac-medium" in found.message


def test_an_installed_name_is_offered_too(check: VoiceNames) -> None:
    [found] = problems(check, {"piper": {"model": "housekeld"}})
    assert "did you mean household" in found.message


def test_each_part_of_a_kokoro_blend_is_checked(check: VoiceNames) -> None:
    [found] = problems(check, {"kokoro": {"voice": "af_heart:0.6,am_adm:0.4"}})
    assert (found.field, found.code) == ("tts.kokoro.voice", "voice_not_found") and "am_adam" in found.message


def test_a_malformed_blend_is_invalid_not_unknown(check: VoiceNames) -> None:
    [found] = problems(check, {"kokoro": {"voice": "af_heart:-1"}})
    assert found.code == "invalid_config"


def test_paths_must_exist_and_are_not_looked_up_in_the_catalog(check: VoiceNames, tmp_path: Path) -> None:
    [found] = problems(check, {"piper": {"model": "out/voices/en_US-lessac-medium.onnx"}})
    assert found.code == "voice_not_found" and "does not exist" in found.message
    (tmp_path / "out" / "voices").mkdir(parents=True)
    (tmp_path / "out" / "voices" / "en_US-lessac-medium.onnx").write_bytes(b"x")
    assert problems(check, {"piper": {"model": "out/voices/en_US-lessac-medium.onnx"}}) == []
    [pack] = problems(check, {"kokoro": {"useCustomVoicepack": True, "voicepackPath": "mine.npy"}})
    assert pack.field == "tts.kokoro.voicepackPath"
    [table] = problems(check, {"kokoro": {"voicesPath": "voices-v1.0.bin"}})
    assert table.field == "tts.kokoro.voicesPath"


def test_a_voices_file_adds_its_names_without_loading_them(check: VoiceNames, tmp_path: Path) -> None:
    folder = tmp_path / "voices" / "kokoro"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "voices-v1.0.bin", "w") as archive:
        archive.writestr("xx_custom.npy", b"not even an array: the check reads only the listing")
    assert problems(check, {"kokoro": {"voicesPath": "voices-v1.0.bin", "voice": "xx_custom"}}) == []
    [found] = problems(check, {"kokoro": {"voice": "xx_custom"}})  # without the file: unknown
    assert found.code == "voice_not_found"
    np.save(folder / "mine.npy", np.zeros(1))
    assert problems(check, {"kokoro": {"useCustomVoicepack": True, "voicepackPath": "mine.npy"}}) == []


def test_the_openai_voice_table_is_checked_by_each_entrys_provider(check: VoiceNames) -> None:
    def openai(voices: dict[str, str], provider: str = "piper") -> list[ConfigProblem]:
        return check.problems("me", VoiceConfig.model_validate({"tts": {"provider": provider}, "openai": {"voices": voices}}))

    assert openai({"alloy": "kokoro:jf_alpha", "echo": "household", "nova": "", "onyx": "kokoro:", "mine": "piper:en_US-lessac-medium"}) == []
    [found] = openai({"alloy": "kokoro:af_hart"})
    assert (found.field, found.code) == ("openai.voices.alloy", "voice_not_found") and "af_heart" in found.message
    [found] = openai({"echo": "housekeld"})  # no provider: the profile's own (Piper)
    assert found.field == "openai.voices.echo" and "household" in found.message
    [found] = openai({"echo": "housekeld"}, provider="kokoro")  # the profile speaks Kokoro: a Kokoro name
    assert found.field == "openai.voices.echo" and "Kokoro" in found.message
    assert openai({"echo": "owner"}, provider="kokoro") == []


def test_a_voice_in_the_configured_voices_file_is_installed_for_its_profile(check: VoiceNames, tmp_path: Path) -> None:
    folder = tmp_path / "voices" / "kokoro"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "voices-v1.0.bin", "w") as archive:
        archive.writestr("af_heart.npy", b"listing only")
    table = VoiceConfig.model_validate({"tts": {"kokoro": {"voicesPath": "voices-v1.0.bin"}}})
    bare = VoiceConfig.model_validate({})
    assert check.installed("me", "kokoro", "af_heart", table)  # a speak naming it fetches nothing
    assert not check.installed("me", "kokoro", "af_heart", bare)
    assert check.installed("me", "kokoro", "owner", bare) and check.installed("me", "piper", "household", table)
    assert not check.installed("me", "piper", "af_heart", table)  # the file is Kokoro's only


def test_a_voice_of_the_configured_voices_file_may_be_named_by_the_openai_table_and_rvcs_base(
        check: VoiceNames, tmp_path: Path) -> None:
    folder = tmp_path / "voices" / "kokoro"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "voices-v1.0.bin", "w") as archive:
        archive.writestr("xx_custom.npy", b"listing only")
    config = {"tts": {"kokoro": {"voicesPath": "voices-v1.0.bin"}, "rvc": {"baseProvider": "kokoro", "baseVoice": "xx_custom"}},
              "openai": {"voices": {"alloy": "kokoro:xx_custom"}}}
    assert check.problems("me", VoiceConfig.model_validate(config)) == []
    config["tts"]["kokoro"] = {}  # type: ignore[index]  # without the file both are unknown
    assert {p.field for p in check.problems("me", VoiceConfig.model_validate(config))} == {
        "tts.rvc.baseVoice", "openai.voices.alloy"}
