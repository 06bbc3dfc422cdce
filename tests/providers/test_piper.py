from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from providers.base import ProviderContext, ProviderError, VoiceNotFoundError
from providers.piper.config import PiperSettings
from providers.piper.engine import PiperProvider, bundled_voice, resolve_model
from tests.contexts import loose_context


def context(tmp_path: Path) -> ProviderContext:
    return loose_context(tmp_path / "p", (tmp_path / "p" / "out" / "voices", tmp_path / "out" / "voices"), "p")


def install_voice(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    source = bundled_voice()
    target = directory / f"{name}.onnx"
    target.symlink_to(source)
    shutil.copy(source.with_name(source.name + ".json"), directory / f"{name}.onnx.json")
    return target


def test_bundled_default(tmp_path: Path) -> None:
    assert resolve_model("en_US-joe-medium", context(tmp_path)) == bundled_voice()


def test_profile_voice_shadows_global(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    global_voice = install_voice(tmp_path / "out" / "voices", "mine")
    assert resolve_model("mine", ctx) == global_voice
    profile_voice = install_voice(tmp_path / "p" / "out" / "voices", "mine")
    assert resolve_model("mine", ctx) == profile_voice
    names = [v.name for v in PiperProvider().voices(ctx)]
    assert names == ["en_US-joe-medium", "mine"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "/nonexistent/voice.onnx", "missing", ".hidden"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(VoiceNotFoundError):
        resolve_model(name, context(tmp_path))


def test_voice_without_json_is_a_clear_error(tmp_path: Path) -> None:
    voice = install_voice(tmp_path / "out" / "voices", "nojson")
    voice.with_name("nojson.onnx.json").unlink()
    with pytest.raises(VoiceNotFoundError, match="nojson.onnx.json"):
        list(PiperProvider().synthesize("Hi.", PiperSettings(model="nojson"), context(tmp_path)))


def test_corrupt_model_is_an_unavailable_voice(tmp_path: Path) -> None:
    directory = tmp_path / "out" / "voices"
    voice = install_voice(directory, "broken")
    voice.unlink()
    voice.write_bytes(b"not an onnx model")
    with pytest.raises(ProviderError, match="cannot load Piper voice broken.onnx") as failed:
        list(PiperProvider().synthesize("Hi.", PiperSettings(model="broken"), context(tmp_path)))
    assert failed.value.code == "voice_unavailable"  # not a missing voice: the file is there but broken


def test_sentences_stream_as_chunks(tmp_path: Path) -> None:
    chunks = list(PiperProvider().synthesize("One. Two! Three?", PiperSettings(), context(tmp_path)))
    assert len(chunks) == 3
    assert all(c.sample_rate == 22050 and c.seconds > 0.2 for c in chunks)


def test_replaced_voice_changes_the_asset_tag(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    voice = install_voice(tmp_path / "out" / "voices", "mine")
    provider = PiperProvider()
    before = provider.asset_tag(PiperSettings(model="mine"), ctx)
    assert provider.asset_tag(PiperSettings(model="mine.onnx"), ctx) == before
    config = voice.with_name("mine.onnx.json")
    config.write_text(config.read_text() + " ")
    assert provider.asset_tag(PiperSettings(model="mine"), ctx) != before


def test_half_installed_profile_voice_does_not_hide_global_one(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    good = install_voice(tmp_path / "out" / "voices", "mine")
    (tmp_path / "p" / "out" / "voices").mkdir(parents=True)
    (tmp_path / "p" / "out" / "voices" / "mine.onnx").write_bytes(b"x")
    assert resolve_model("mine", ctx) == good


def test_a_relative_model_path_is_found_under_the_profile_then_the_home(tmp_path: Path) -> None:
    """The seed wrote "model": "out/voices/amy/amy.onnx", relative to where it ran."""
    from tests.contexts import home_context

    ctx = home_context(tmp_path)
    at_home = install_voice(tmp_path / "out" / "voices" / "amy", "amy")
    assert resolve_model("out/voices/amy/amy.onnx", ctx) == at_home
    in_profile = install_voice(ctx.profile_dir / "out" / "voices" / "amy", "amy")
    assert resolve_model("out/voices/amy/amy.onnx", ctx) == in_profile
    with pytest.raises(VoiceNotFoundError, match="not found under"):
        resolve_model("out/voices/bob/bob.onnx", ctx)
    chunks = list(PiperProvider().synthesize("Amy speaks.", PiperSettings(model="out/voices/amy/amy.onnx"), ctx))
    assert chunks and chunks[0].sample_rate == 22050
