"""The RVC provider with the real Piper as its base: sentence-by-sentence conversion, models kept
loaded and reloaded when their files change, clear errors for missing files, auto pitch shift,
and the GPU guard hook."""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from providers.base import AudioChunk, ProviderContext, ProviderError, ProviderUnavailableError
from providers.piper.config import PiperSettings
from providers.piper.engine import PiperProvider
from providers.rvc.config import RvcSettings
from providers.rvc.engine import RvcProvider
from tests.contexts import loose_context
from tests.providers.rvc.fakes import RvcFile, install_rvc_assets, write_index, write_rvc_model
from tests.speech import owner

TEXT = "Good evening. The lights are off now."


def rvc(**fields: object) -> RvcSettings:
    """Settings as voice.json spells them (camelCase)."""
    from pydantic.alias_generators import to_camel

    return RvcSettings.model_validate({to_camel(k): v for k, v in fields.items()})


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Household voices with the shared content encoder, rmvpe.pt and a 'default' speaker."""
    voices = tmp_path_factory.mktemp("home") / "out" / "voices"
    install_rvc_assets(voices)
    return voices


@pytest.fixture(scope="module")
def provider() -> Iterator[RvcProvider]:
    engine = RvcProvider()
    yield engine
    engine.close()


def context(tmp_path: Path, household: Path) -> ProviderContext:
    profile = tmp_path / "profiles" / "default"
    (profile / "out" / "voices").mkdir(parents=True)
    return loose_context(profile, (profile / "out" / "voices", household))


def test_converts_each_sentence_of_piper_speech(provider: RvcProvider, household: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, household)
    chunks = list(provider.synthesize(TEXT, RvcSettings(), ctx))
    piper = list(PiperProvider().synthesize(TEXT, PiperSettings(), ctx))

    assert len(chunks) == len(piper) == 2
    for converted, spoken in zip(chunks, piper):
        assert converted.sample_rate == 40000
        assert abs(converted.seconds - spoken.seconds) < 0.04
        assert np.abs(np.frombuffer(converted.pcm, np.int16)).max() > 0


def test_model_stays_loaded_and_is_reloaded_when_replaced(provider: RvcProvider, household: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, household)
    speaker = ctx.voices_dirs[0] / "rvc-models" / "alice"
    model = write_rvc_model(speaker / "alice.pth", RvcFile(seed=1))
    index = write_index(speaker / "alice.index", 768, seed=1)
    settings = rvc(speaker_id="alice")
    tag = provider.asset_tag(settings, ctx)
    provider.preload(settings, ctx)
    loaded = {k: v[1] for k, v in provider._cache.items() if k[0] == "voice" and k[1] == str(model)}
    provider.preload(settings, ctx)
    assert {k: v[1] for k, v in provider._cache.items() if k[0] == "voice" and k[1] == str(model)} == loaded

    write_rvc_model(model, RvcFile(seed=2))
    os.utime(model, ns=(1, 1))  # even a same-size rewrite with an old mtime is noticed
    assert provider.asset_tag(settings, ctx) != tag
    provider.preload(settings, ctx)
    reloaded = [v[1] for k, v in provider._cache.items() if k[0] == "voice" and k[1] == str(model)]
    assert reloaded and all(r is not loaded[k] for k, r in zip(loaded, reloaded))

    tag = provider.asset_tag(settings, ctx)
    write_index(index, 768, seed=3)
    assert provider.asset_tag(settings, ctx) != tag


def test_seed_and_webui_file_names_are_found(provider: RvcProvider, household: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, household)
    speaker = ctx.voices_dirs[0] / "rvc-models" / "bob"
    write_rvc_model(speaker / "default.pth", RvcFile(version="v1", sr="48k", style="applio"))
    write_index(speaker / "trained_IVF3_Flat_nprobe_1_bob_v1.index", 256, frames=120)
    added = write_index(speaker / "added_IVF3_Flat_nprobe_1_bob_v1.index", 256, frames=120)
    from providers.rvc.assets import find_speaker

    files = find_speaker("bob", ctx)
    assert files.model.name == "default.pth" and files.index == added
    assert [v.name for v in provider.voices(ctx)] == ["bob", "default"]


def test_missing_model_names_the_folder(provider: RvcProvider, household: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, household)
    with pytest.raises(ProviderUnavailableError, match=r"no RVC model for speaker 'carol': put carol\.pth .* in .*rvc-models/carol"):
        list(provider.synthesize(TEXT, rvc(speaker_id="carol"), ctx))
    from providers.rvc.assets import find_speaker

    with pytest.raises(ProviderError, match="invalid RVC speaker name"):  # a path never leaves rvc-models/
        find_speaker("../../etc", ctx)


def test_missing_content_encoder_names_what_to_put_where(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    install_rvc_assets(voices, hubert=False, rmvpe=False, index=False)
    ctx = loose_context(tmp_path, (voices,))
    with pytest.raises(ProviderUnavailableError, match=r"RVC needs a content encoder: put hubert_base\.pt"):
        list(RvcProvider().synthesize(TEXT, RvcSettings(), ctx))
    with pytest.raises(ProviderUnavailableError, match="content encoder not found at .*/nowhere"):
        list(RvcProvider().synthesize(TEXT, rvc(content_encoder_path="nowhere"), ctx))


def test_mismatched_index_is_refused_with_its_name(provider: RvcProvider, household: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, household)
    speaker = ctx.voices_dirs[0] / "rvc-models" / "dave"
    write_rvc_model(speaker / "dave.pth", RvcFile(version="v1"))
    write_index(speaker / "dave.index", 768)
    with pytest.raises(ProviderError, match=r"dave\.index: index holds 768-d features but the model uses 256-d"):
        list(provider.synthesize(TEXT, rvc(speaker_id="dave"), ctx))


def _write_samples(folder: Path, semitones: float) -> None:
    """The owner: Piper's voice played faster, so its pitch is ``semitones`` higher. It says what
    the base voice is measured on, in one go as the base does: Piper's median pitch moves by a
    few semitones between texts (+3 was read for +7 with other sentences), which would hide what
    the estimator is asked to find."""
    from providers.rvc.autopitch import CALIBRATION_TEXT

    folder.mkdir(parents=True, exist_ok=True)
    _write_wav(folder / "s0.wav", owner(CALIBRATION_TEXT), round(22050 * 2 ** (semitones / 12)))


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((audio * 32767).astype(np.int16).tobytes())


def _voice_like(hz: float, seconds: float = 2.0, rate: int = 22050) -> np.ndarray:
    """A steady voiced sound with a little vibrato (Piper's own pitch varies from run to run)."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * np.cumsum(hz * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / rate
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 20))).astype(np.float32)


class SteadyBase:
    """A base engine that always speaks at 120 Hz."""

    name = "steady"

    def synthesize(self, text: str, settings: object, ctx: ProviderContext) -> Iterator[AudioChunk]:
        yield AudioChunk((_voice_like(120.0) * 32767).astype(np.int16).tobytes(), 22050)

    def asset_tag(self, settings: object, ctx: ProviderContext) -> str:
        return "steady"

    def preload(self, settings: object, ctx: ProviderContext) -> None: ...

    def voices(self, ctx: ProviderContext) -> list[object]:
        return []

    def close(self) -> None: ...


def test_auto_pitch_shift_comes_from_the_owners_samples(household: Path, tmp_path: Path) -> None:
    engine = RvcProvider(base_factory=lambda name: SteadyBase())  # type: ignore[arg-type,return-value]
    ctx = context(tmp_path, household)
    with pytest.raises(ProviderError, match="needs the owner's recorded samples"):
        engine.asset_tag(rvc(pitch_shift="auto"), ctx)
    samples = ctx.samples_dir
    samples.mkdir(parents=True)
    for i in range(3):
        _write_wav(samples / f"s{i}.wav", _voice_like(120.0 * 2 ** (5 / 12)), 22050)
    assert engine.asset_tag(rvc(pitch_shift="auto"), ctx).endswith("auto+5")
    shutil.rmtree(samples)
    samples.mkdir()
    for i in range(2):
        _write_wav(samples / f"s{i}.wav", _voice_like(120.0 * 2 ** (-7 / 12), rate=16000), 16000)
    assert engine.asset_tag(rvc(pitch_shift="auto"), ctx).endswith("auto-7")  # new samples, new shift


def test_gpu_guard_decides_the_device_and_hears_about_pausing(household: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, str, bool]] = []

    @contextmanager
    def guard(need_mb: int, purpose: str, pause_hogs: bool) -> Iterator[str]:
        calls.append((need_mb, purpose, pause_hogs))
        yield "cpu"

    engine = RvcProvider(gpu_guard=guard)  # type: ignore[arg-type]
    ctx = context(tmp_path, household)
    chunks = list(engine.synthesize("Short.", rvc(pause_ollama_during_inference=True, f0_method="dio"), ctx))
    assert len(chunks) == 1 and calls and calls[0][1:] == ("rvc", True)
    calls.clear()
    list(engine.synthesize("Short.", rvc(device="cpu", f0_method="dio"), ctx))
    assert calls == []  # an explicit CPU setting needs no GPU arbitration


class PartedBase(SteadyBase):
    """A base that sends its first sentence in two parts, as a split Piper voice does."""

    def synthesize(self, text: str, settings: object, ctx: ProviderContext) -> Iterator[AudioChunk]:
        pcm = (_voice_like(120.0) * 32767).astype(np.int16).tobytes()
        yield AudioChunk(pcm[:8000], 22050, partial=True)
        yield AudioChunk(pcm[8000:], 22050, text="First.")
        yield AudioChunk(pcm, 22050, text="Second.")


def test_a_sentence_sent_in_parts_is_converted_whole(household: Path, tmp_path: Path) -> None:
    engine = RvcProvider(base_factory=lambda name: PartedBase())  # type: ignore[arg-type,return-value]
    converted = list(engine.synthesize(TEXT, rvc(pitch_shift=0), context(tmp_path, household)))
    assert [c.text for c in converted] == ["First.", "Second."] and not any(c.partial for c in converted)
    assert abs(converted[0].seconds - converted[1].seconds) < 0.02  # the first sentence all there, in one
    engine.close()
