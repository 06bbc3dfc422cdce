"""The score's scale, pinned where a user reads it: each component's ramp, the weights, the
speaker match as a factor, the refusal reasons at their thresholds, and what measure() reads
off known signals."""

from __future__ import annotations

import numpy as np
import pytest

from agent.record.quality import Measurements, measure, ramp, score
from agent.record.vad import Utterance

GOOD = Measurements(speech_ratio=0.6, snr_db=30.0, clipped_fraction=0.0, level_dbfs=-20.0, seconds=5.0)


def with_(**changes: object) -> Measurements:
    return Measurements(**{**GOOD.__dict__, **changes})  # type: ignore[arg-type]


def test_ramp_runs_either_way_and_stays_within_0_and_100() -> None:
    assert ramp(5.0, 0.0, 10.0) == 50.0 and ramp(7.5, 10.0, 0.0) == 25.0
    assert ramp(-1.0, 0.0, 10.0) == 0.0 and ramp(11.0, 0.0, 10.0) == 100.0
    assert ramp(3.0, 3.0, 3.0) == 100.0


@pytest.mark.parametrize(("changes", "component"), [
    ({"speech_ratio": 0.4}, "speech_ratio"),  # 0.2 .. 0.6
    ({"snr_db": 17.5}, "snr"),  # 5 .. 30 dB
    ({"clipped_fraction": 0.005}, "clipping"),  # 1 % .. none
    ({"level_dbfs": -41.0}, "level"),  # too quiet: -50 .. -32 dBFS
    ({"level_dbfs": -7.5}, "level"),  # too loud: -3 .. -12 dBFS
    ({"seconds": 1.75}, "duration"),  # too short: 0.5 .. 3 s
    ({"seconds": 15.0}, "duration"),  # too long: 20 .. 10 s
    ({"dnsmos": {"sig": 3.0, "bak": 3.0, "ovrl": 2.7}}, "dnsmos"),  # 2.0 .. 3.4
])
def test_each_component_is_halfway_in_the_middle_of_its_ramp(changes: dict[str, object], component: str) -> None:
    result = score(with_(**changes), None)
    assert result.components[component] == 50.0
    assert all(v == 100.0 for k, v in result.components.items() if k != component)


def test_the_total_is_the_weighted_mean_times_the_speaker_match() -> None:
    # speech_ratio 10, snr 20, clipping 10, level 10, duration 10, dnsmos 30
    no_noise_margin = with_(snr_db=5.0)
    assert score(no_noise_margin, None).total == round(100 * 40 / 60, 1)
    rated_poor = with_(snr_db=5.0, dnsmos={"sig": 2.0, "bak": 2.0, "ovrl": 2.0})
    assert score(rated_poor, None).total == round(100 * 40 / 90, 1)
    half_the_owner = with_(speaker_similarity=0.675)  # 0.55 .. 0.80
    result = score(half_the_owner, None)
    assert result.components["speaker"] == 50.0 and result.total == 50.0
    assert score(with_(speaker_similarity=0.55), None).total == 0.0  # a perfect recording of someone else


@pytest.mark.parametrize(("changes", "reason"), [
    ({"clipped_fraction": 0.02}, "clipped (2.0% of samples at full scale)"),
    ({"speech_ratio": 0.1}, "little speech (10% of frames)"),
    ({"snr_db": 2.0}, "steady noise, not speech (nothing rises above it: SNR 2.0 dB)"),
    ({"speaker_similarity": 0.6}, "another speaker (similarity 0.60 < 0.70)"),
])
def test_each_refusal_says_why(changes: dict[str, object], reason: str) -> None:
    assert score(with_(**changes), 0.7).reasons == [reason]


def test_at_each_threshold_nothing_is_refused() -> None:
    at_limits = with_(clipped_fraction=0.01, speech_ratio=0.2, snr_db=3.0, speaker_similarity=0.7)
    assert score(at_limits, 0.7).reasons == []
    assert score(with_(speaker_similarity=0.1), None).reasons == []  # no reference: no speaker refusal
    assert score(GOOD, 0.7).reasons == []  # no similarity measured: none either


def test_measure_reads_level_noise_clipping_and_length_off_the_samples() -> None:
    frame = 160
    loud, quiet = np.full(frame, 0.1, np.float32), np.full(frame, 0.001, np.float32)
    samples = np.concatenate([loud] * 6 + [quiet] * 4)
    samples[0] = 1.0  # one sample at full scale
    voiced = np.array([True] * 6 + [False] * 4)
    m = measure(Utterance(samples, voiced, 0.0, frame))
    assert m.seconds == len(samples) / 16000 and m.speech_ratio == 0.6
    assert m.clipped_fraction == pytest.approx(1 / len(samples))
    speech_energy = (0.1**2 * (6 * frame - 1) + 1.0) / (6 * frame)
    assert m.level_dbfs == pytest.approx(10 * np.log10(speech_energy), abs=1e-3)
    assert m.snr_db == pytest.approx(10 * np.log10(speech_energy / 0.001**2), abs=1e-3)


def test_the_noise_floor_is_the_quietest_tenth_when_few_frames_are_unvoiced() -> None:
    frame = 160
    levels = [0.1] * 8 + [0.01, 0.001]  # all voiced but two, too few to trust as the floor
    samples = np.concatenate([np.full(frame, v, np.float32) for v in levels])
    voiced = np.array([True] * 8 + [False] * 2)
    m = measure(Utterance(samples, voiced, 0.0, frame))
    floor = float(np.percentile([v**2 for v in levels], 10))
    assert m.snr_db == pytest.approx(10 * np.log10(0.1**2 / floor), abs=1e-2)


def test_three_unvoiced_frames_are_enough_to_set_the_noise_floor() -> None:
    frame = 160
    levels = [0.1] * 35 + [0.003] * 2 + [0.001] * 3  # the quietest tenth would be the two soft voiced frames
    samples = np.concatenate([np.full(frame, v, np.float32) for v in levels])
    voiced = np.array([True] * 37 + [False] * 3)
    m = measure(Utterance(samples, voiced, 0.0, frame))
    speech = (35 * 0.1**2 + 2 * 0.003**2) / 37
    assert m.snr_db == pytest.approx(10 * np.log10(speech / 0.001**2), abs=1e-2)


def test_a_sample_at_0_999_counts_as_clipped() -> None:
    samples = np.full(1600, 0.1, np.float32)
    samples[:2] = np.float32(0.999)
    m = measure(Utterance(samples, np.ones(10, bool), 0.0, 160))
    assert m.clipped_fraction == pytest.approx(2 / 1600)


def test_components_are_rounded_to_a_tenth_and_the_measurements_kept() -> None:
    quiet = with_(level_dbfs=-49.0)  # 1/18 of the way up from -50 dBFS
    result = score(quiet, None)
    assert result.components["level"] == 5.6 and result.measurements is quiet


def test_digital_silence_in_the_pauses_gives_a_finite_snr() -> None:
    frame = 160
    samples = np.concatenate([np.full(frame * 6, 0.1, np.float32), np.zeros(frame * 4, np.float32)])
    m = measure(Utterance(samples, np.array([True] * 6 + [False] * 4), 0.0, frame))
    assert np.isfinite(m.snr_db) and m.snr_db > 100  # 0.01 over the 1e-12 floor: 100 dB
