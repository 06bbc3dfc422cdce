"""Pitch estimation: RMVPE decoding, pyworld methods on a known tone, coarse pitch, and the
fallback when a method's asset or package is missing."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from providers.base import ProviderUnavailableError
from providers.rvc import pitch
from providers.rvc.pitch import PitchTools, choose_method, coarse, estimate_f0, rmvpe_loader
from providers.rvc.rmvpe import CENTS_OFFSET, decode_salience
from tests.providers.rvc.fakes import write_rmvpe
from tests.speech import owner


def tone(hz: float, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(4 * np.pi * hz * t)).astype(np.float32)


def test_salience_decodes_to_hertz() -> None:
    cents = np.pad(CENTS_OFFSET + 20 * np.arange(360), (4, 4))
    salience = np.zeros((3, 360), np.float32)
    salience[0, 100] = 0.9  # 100 bins above 10 Hz * 2^(1997 cents)
    salience[1, 100:102] = 0.5  # halfway between two bins
    salience[2, 50] = 0.02  # below the voicing threshold
    f0 = decode_salience(salience, cents, 0.03)
    expected = 10 * 2 ** ((CENTS_OFFSET + 2000) / 1200)
    assert f0[0] == pytest.approx(expected)
    assert f0[1] == pytest.approx(10 * 2 ** ((CENTS_OFFSET + 2010) / 1200))
    assert f0[2] == 0


def test_rmvpe_file_gives_one_value_per_10ms(tmp_path: Path) -> None:
    tools = rmvpe_loader(write_rmvpe(tmp_path / "rmvpe.pt"), "cpu", "here")
    assert tools.rmvpe is not None
    f0 = estimate_f0(tone(200), "rmvpe", tools)
    assert f0.shape == (int(16000 * 1.5) // 160 + 1,)
    assert np.isfinite(f0).all()


def buzz(hz: float, seconds: float = 1.5) -> np.ndarray:
    """A voice-like source: a sawtooth (every harmonic, falling as 1/k)."""
    phase = 2 * np.pi * hz * np.arange(int(16000 * seconds)) / 16000
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 25))).astype(np.float32)


@pytest.mark.parametrize("method", ["harvest", "dio"])
def test_pyworld_methods_find_a_known_pitch(method: str) -> None:
    tools = PitchTools(None, "absent")
    for hz in (150.0, 150 * 2 ** (4 / 12)):
        f0 = estimate_f0(buzz(hz), method, tools)
        assert (f0 > 0).mean() > 0.9
        assert np.median(f0[f0 > 0]) == pytest.approx(hz, rel=0.01)


def test_pyworld_finds_speech_in_piper_audio() -> None:
    from providers.rvc.convert import resample

    speech = resample(owner("Measuring the pitch of a spoken sentence."), 22050, 16000)
    f0 = estimate_f0(speech, "harvest", PitchTools(None, "absent"))
    assert (f0 > 0).mean() > 0.2 and 70 < np.median(f0[f0 > 0]) < 300


def test_coarse_pitch_is_rvcs_mel_scale() -> None:
    values = coarse(np.array([0.0, 50.0, 100.0, 440.0, 1100.0, 2000.0]))
    assert values[0] == 1 and values[1] == 1 and values[4] == 255 and values[5] == 255
    assert 1 < values[2] < values[3] < 255
    mel = lambda f: 1127 * np.log(1 + f / 700)  # noqa: E731
    assert values[3] == round((mel(440) - mel(50)) * 254 / (mel(1100) - mel(50)) + 1)


def test_missing_rmvpe_falls_back_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    tools = rmvpe_loader(None, "cpu", "/nowhere/rvc-models/rmvpe.pt")
    with caplog.at_level(logging.WARNING):
        assert choose_method("rmvpe", tools) == "harvest"  # crepe is last on a CPU: far slower than real time
    assert "rmvpe.pt not found (/nowhere/rvc-models/rmvpe.pt)" in caplog.text and "using harvest" in caplog.text
    assert choose_method("dio", tools) == "dio"


def test_without_any_estimator_the_provider_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pitch, "_has", lambda module: False)
    with pytest.raises(ProviderUnavailableError, match="no pitch estimator can run: rmvpe.pt not found"):
        choose_method("rmvpe", PitchTools(None, "rmvpe.pt not found (x)"))
    monkeypatch.setattr(pitch, "_has", lambda module: module == "torchcrepe")
    assert choose_method("harvest", PitchTools(None, "absent")) == "crepe"


def test_a_broken_rmvpe_file_is_reported_not_fatal(tmp_path: Path) -> None:
    bad = tmp_path / "rmvpe.pt"
    bad.write_bytes(b"garbage")
    tools = rmvpe_loader(bad, "cpu", str(bad))
    assert tools.rmvpe is None and "damaged" in tools.rmvpe_missing
