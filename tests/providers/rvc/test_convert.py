"""The conversion pipeline's steps (RVC WebUI's): filter, cut points, volume envelope, peak limit,
and a whole utterance through a small model, long input included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from providers.rvc import convert
from providers.rvc.convert import Converter, ConvertOptions, cut_points, high_pass, to_int16, volume_envelope
from providers.rvc.hubert import load_hubert
from providers.rvc.pitch import PitchTools, rmvpe_loader
from providers.rvc.runtime import load_voice
from tests.providers.rvc.fakes import RvcFile, write_fairseq_hubert, write_index, write_rmvpe, write_rvc_model
from tests.speech import owner


def sine(hz: float, seconds: float, rate: int = 16000) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)


def test_high_pass_removes_rumble_keeps_voice() -> None:
    rumble, voice = sine(20, 2), sine(300, 2)
    assert np.abs(high_pass(rumble))[4000:-4000].max() < 0.05
    assert np.abs(high_pass(voice))[4000:-4000].max() == pytest.approx(1, abs=0.02)


def test_long_input_is_cut_at_its_quiet_points() -> None:
    audio = np.random.default_rng(0).normal(size=16000 * 90) * 0.3
    for quiet in (35.0, 77.0):  # within 6 s of the 38 s and 76 s marks
        audio[int(quiet * 16000) : int(quiet * 16000) + 800] = 0
    cuts = cut_points(audio)
    assert len(cuts) == 2
    assert abs(cuts[0] / 16000 - 35.0) < 0.06 and abs(cuts[1] / 16000 - 77.0) < 0.06
    assert cut_points(audio[: 16000 * 40]) == []


def test_volume_envelope_follows_the_input_at_zero_and_keeps_output_at_one() -> None:
    source = np.concatenate([sine(200, 2) * 0.8, sine(200, 2) * 0.1])
    out = sine(300, 4, 40000) * 0.3
    assert np.array_equal(volume_envelope(source, 16000, out, 40000, 1.0), out)
    mixed = volume_envelope(source, 16000, out, 40000, 0.0)
    loud, quiet = np.abs(mixed[20000:60000]).max(), np.abs(mixed[100000:140000]).max()
    assert loud / quiet == pytest.approx(8, rel=0.15)


def test_peaks_are_limited_before_int16() -> None:
    pcm = to_int16(np.array([0.0, 0.5, -1.7, 1.2]))
    assert pcm.dtype == np.int16 and abs(int(pcm[2])) == pytest.approx(0.99 * 32768, rel=1e-3)
    assert to_int16(np.array([0.5]))[0] == 16384


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Converter, Path]:
    root = tmp_path_factory.mktemp("convert")
    hubert = load_hubert(write_fairseq_hubert(root / "hubert_base.pt"))
    tools = rmvpe_loader(write_rmvpe(root / "rmvpe.pt"), "cpu", "")
    return Converter(hubert, tools, "cpu"), root


def _utterance() -> np.ndarray:
    return convert.resample(owner("The quick brown fox jumps over the lazy dog."), 22050, 16000)


@pytest.mark.parametrize("spec, method", [(RvcFile(), "rmvpe"), (RvcFile(version="v1", sr="48k", style="applio"), "dio"),
                                           (RvcFile(f0=False), "none")], ids=["v2-40k-rmvpe", "v1-48k-dio", "v2-nono"])
def test_an_utterance_keeps_its_duration_at_the_model_rate(parts: tuple[Converter, Path], spec: RvcFile, method: str) -> None:
    converter, root = parts
    dim = 256 if spec.version == "v1" else 768
    voice = load_voice(write_rvc_model(root / f"{spec.version}.pth", spec), write_index(root / f"{spec.version}.index", dim), "cpu")
    audio = _utterance()
    out = converter.convert(audio, voice, ConvertOptions(semitones=2, index_rate=0.75), method)
    assert out.dtype == np.int16
    assert abs(len(out) / voice.sample_rate - len(audio) / 16000) < 0.03
    assert np.abs(out).max() > 0


def test_long_input_is_converted_in_segments(parts: tuple[Converter, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    converter, root = parts
    voice = load_voice(write_rvc_model(root / "seg.pth"), None, "cpu")
    monkeypatch.setattr(convert, "X_CENTER", 1)  # cut every second instead of every 38 s: same code path
    monkeypatch.setattr(convert, "X_QUERY", 0.25)
    monkeypatch.setattr(convert, "X_MAX", 2)
    audio = _utterance()
    segments = len(cut_points(audio)) + 1
    assert segments >= 2
    out = converter.convert(audio, voice, ConvertOptions(), "dio")
    # each segment may come out up to one 20 ms frame short (as in the test below); 0.03 s flat
    # failed once (31.6 ms short)
    assert abs(len(out) / 40000 - len(audio) / 16000) < 0.02 * segments


def test_missing_pitch_tools_are_not_needed_for_models_without_pitch(parts: tuple[Converter, Path]) -> None:
    converter, root = parts
    bare = Converter(converter.hubert, PitchTools(None, "none"), "cpu")
    voice = load_voice(write_rvc_model(root / "nono.pth", RvcFile(f0=False, sr="32k")), None, "cpu")
    out = bare.convert(sine(200, 1.0).astype(np.float32) * 0.3, voice, ConvertOptions(), "none")
    assert abs(len(out) - 32000) <= 3 * 320  # RVC's output runs a frame or two short of its input
