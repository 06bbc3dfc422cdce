"""The pieces of the voicepack score that need no model: pitch, spread and starting blends."""

from __future__ import annotations

import numpy as np

from providers.kokoro.similarity import (PITCH_PENALTY, PITCH_TOLERANCE, Scorer, blends, mean_direction, median_pitch,
                                         octaves_apart, pitch_penalty, style_spread)


def test_spread_is_per_value_and_never_zero() -> None:
    rng = np.random.default_rng(0)
    stock = [rng.normal(0, 0.3, (510, 1, 256)).astype(np.float32) for _ in range(4)]
    spread = style_spread(stock + [stock[0]])
    assert spread.shape == (510, 1, 256) and 0.1 < float(spread.mean()) < 0.4
    assert abs(float(style_spread([stock[0], stock[0]]).min()) - 1e-3) < 1e-9  # identical voices still leave room to move


def test_mean_direction_is_a_unit_vector_between_its_inputs() -> None:
    a, b = np.eye(3, dtype=np.float32)[0], np.eye(3, dtype=np.float32)[1]
    mean = mean_direction([a, b])
    assert abs(float(np.linalg.norm(mean)) - 1) < 1e-6 and abs(float(mean @ a) - float(mean @ b)) < 1e-6


def test_blends_of_the_two_best() -> None:
    a, b = np.ones((510, 1, 256), np.float32), np.zeros((510, 1, 256), np.float32)
    mixed = blends({"a": a, "b": b, "c": b}, ["a", "b", "c"])
    assert sorted(mixed) == ["a:0.5,b:0.5", "a:0.75,b:0.25"]
    assert float(mixed["a:0.75,b:0.25"].mean()) == 0.75


def voiced(pitch: float, rate: int = 24000, seconds: float = 1.5) -> np.ndarray:
    """A buzzy vowel-like tone (harmonics of ``pitch``) between two silences."""
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(0.6**k * np.sin(2 * np.pi * pitch * k * t) for k in range(1, 20) if pitch * k < rate / 2)
    silence = np.zeros(rate // 2)
    return np.concatenate([silence, 0.3 * wave / np.abs(wave).max(), silence]).astype(np.float32)


def test_median_pitch_of_the_voiced_part() -> None:
    for pitch in (95.0, 210.0):
        assert abs(median_pitch(voiced(pitch), 24000) - pitch) < pitch * 0.03
    assert abs(median_pitch(voiced(120.0, rate=16000), 16000) - 120) < 4
    assert median_pitch(np.zeros(24000, np.float32), 24000) == 0.0 and median_pitch(np.zeros(100, np.float32), 24000) == 0.0
    assert octaves_apart(220.0, 110.0) == 1.0 and octaves_apart(110.0, 220.0) == -1.0 and octaves_apart(0.0, 110.0) == 0.0


def test_a_voice_past_the_pitch_tolerance_pays_more_than_any_similarity_gain() -> None:
    """Within about 5 % the penalty is the gentle one; 10 % off (0.1375 octaves, what a listener
    hears as another voice) costs more than the 0.1 of similarity a run gains late."""
    assert pitch_penalty(0.0) == 0.0
    assert pitch_penalty(PITCH_TOLERANCE) == pitch_penalty(-PITCH_TOLERANCE) == PITCH_PENALTY * PITCH_TOLERANCE
    assert pitch_penalty(0.05) == PITCH_PENALTY * 0.05
    ten_percent = octaves_apart(1.10, 1.0)
    assert pitch_penalty(ten_percent) > 0.1 > pitch_penalty(PITCH_TOLERANCE) + 0.05
    assert pitch_penalty(-ten_percent) == pitch_penalty(ten_percent)


class SameVoice:
    """An embedder that hears every sound as the one voice: only pitch tells candidates apart."""

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        return np.array([1.0, 0.0], np.float32)


def test_a_voice_about_to_be_kept_is_heard_on_the_wide_lines() -> None:
    """The check lines happen to sound on pitch; the owner's other sentences show the voice 20 %
    high: the wide reading is what its score keeps."""
    pitch_on = {"check": 100.0, "w1": 120.0, "w2": 120.0, "w3": 80.0}

    def candidate(line: str, style: np.ndarray) -> np.ndarray:
        return voiced(pitch_on[line] * float(style[0]))

    target = np.array([1.0, 0.0], np.float32)
    scorer = Scorer(candidate, SameVoice(), target, ["check"], target_pitch=100.0,  # type: ignore[arg-type]
                    wide_lines=["w1", "w2", "w3"])
    narrow = scorer(np.array([1.0]))
    wide = scorer.widened(np.array([1.0]), narrow)
    assert abs(narrow.octaves) < 0.02 and abs(wide.octaves - octaves_apart(120.0, 100.0)) < 0.02
    assert abs(wide.total - (narrow.total + pitch_penalty(narrow.octaves) - pitch_penalty(wide.octaves))) < 1e-9
    assert wide.target == narrow.target and wide.total < narrow.total
    refused = type(narrow)(-1.0, narrow.target, narrow.consistency, False, narrow.octaves)
    assert scorer.widened(np.array([1.0]), refused) is refused  # a refused voice is not heard again
    no_wide = Scorer(candidate, SameVoice(), target, ["check"], target_pitch=100.0)  # type: ignore[arg-type]
    assert no_wide.widened(np.array([1.0]), narrow) is narrow
