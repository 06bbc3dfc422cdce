"""The pieces of the voicepack search that need no model: features, proposals, step size."""

from __future__ import annotations

import numpy as np

from providers.kokoro.walk import adapt_step, blends, feature_similarity, propose, style_spread, voice_features

RATE = 24000


def voiced(pitch: float, seconds: float = 1.5, bright: bool = False) -> np.ndarray:
    """A buzzy vowel-like tone: harmonics of ``pitch``, duller or brighter."""
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = range(1, 30)
    tilt = 0.9 if bright else 0.5
    wave = sum(tilt**k * np.sin(2 * np.pi * pitch * k * t) for k in harmonics if pitch * k < RATE / 2)
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def test_features_measure_pitch_and_envelope() -> None:
    low, high = voice_features(voiced(110), RATE), voice_features(voiced(220), RATE)
    assert abs(2 ** low[0] - 110) < 5 and abs(2 ** high[0] - 220) < 10
    assert feature_similarity(low, low) == 1.0
    same_pitch_brighter = voice_features(voiced(110, bright=True), RATE)
    assert feature_similarity(low, high) < 0.85
    assert feature_similarity(low, same_pitch_brighter) < 1.0
    assert feature_similarity(low, voice_features(voiced(112), RATE)) > feature_similarity(low, high)


def test_proposals_stay_near_and_keep_rows_together() -> None:
    rng = np.random.default_rng(0)
    stock = [rng.normal(0, 0.3, (510, 1, 256)).astype(np.float32) for _ in range(4)]
    spread = style_spread(stock)
    best = stock[0]
    moves = [propose(best, spread, stock, 0.05, np.random.default_rng(i)) - best for i in range(40)]
    assert all(m.shape == best.shape and m.dtype == np.float32 for m in moves)
    assert all(0 < np.abs(m).mean() < 0.25 for m in moves)  # the stock voices differ by ~0.34 per value
    assert propose(best, spread, stock, 0.05, np.random.default_rng(7)).tobytes() == propose(best, spread, stock, 0.05, np.random.default_rng(7)).tobytes()


def test_one_fifth_rule_keeps_the_step_in_bounds() -> None:
    step = 0.05
    for _ in range(100):
        step = adapt_step(step, improved=False, base=0.05)
    assert step == 0.05 / 4
    for _ in range(100):
        step = adapt_step(step, improved=True, base=0.05)
    assert step == 0.05 * 8


def test_blends_of_the_two_best() -> None:
    a, b = np.ones((510, 1, 256), np.float32), np.zeros((510, 1, 256), np.float32)
    mixed = blends({"a": a, "b": b, "c": b}, ["a", "b", "c"])
    assert sorted(mixed) == ["a:0.5,b:0.5", "a:0.75,b:0.25"]
    assert float(mixed["a:0.75,b:0.25"].mean()) == 0.75
