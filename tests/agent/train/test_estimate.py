"""The training estimate: its arithmetic, where its pace comes from, and its words."""

from __future__ import annotations

from dataclasses import dataclass

from agent.train.estimate import Timing, duration_words, estimate, measure
from agent.train.plan import dataset_summary, job_estimate, trainer_readiness
from providers.spec import Readiness, RoughPace, TrainerSpec
from tests.fake_trainer import CountingParams


@dataclass(frozen=True)
class Sample:
    id: str
    file: str
    duration: float
    score: float
    transcript: str | None


def test_measured_pace_times_steps_plus_setup() -> None:
    measured = Timing("cpu", 40.0, 6.0, 30, "20250101000000-abcdef")
    got = estimate(60, measured, Timing("cpu", 0.0, 99.0, 0, where="bench"))
    assert got.source == "measured" and got.seconds == 40 + 60 * 6
    assert got.words == ("about 7 min (measured: 6 s a step × 60 steps on this machine's CPU, plus 40 s to set up, "
                         "from job 20250101000000-abcdef)")


def test_rough_pace_when_nothing_ran_here_says_so() -> None:
    got = estimate(60, None, Timing("cpu", 0.0, 7.5, 0, where="bench/RESULTS.md"))
    assert got.source == "rough" and got.seconds == 450
    assert got.words.startswith("about 8 min (rough: 8 s a step × 60 steps on a CPU elsewhere (bench/RESULTS.md)")
    assert "not yet measured here" in got.words


def test_no_pace_no_estimate() -> None:
    got = estimate(60, None, None)
    assert (got.source, got.seconds) == ("none", None) and "no job of this trainer has run" in got.words
    assert estimate(None, Timing("cpu", 0, 1, 5), None).seconds is None


def test_measure_leaves_the_first_step_to_setup() -> None:
    # process up at 100; step 1 reported at 150, step 11 at 170: 2 s a step, setup 48 s
    timing = measure("cuda", 100.0, (150.0, 1), (170.0, 11), "j")
    assert timing == Timing("cuda", 48.0, 2.0, 10, "j")
    assert measure("cpu", 100.0, (150.0, 1), (150.0, 1), "j") is None  # one step says nothing of the pace
    assert measure("cpu", 100.0, None, None, "j") is None


def test_stored_timing_is_checked() -> None:
    assert Timing.from_dict(Timing("cpu", 1, 2, 3, "j").as_dict()) == Timing("cpu", 1, 2, 3, "j")
    for bad in (None, {}, {"device": "cpu", "setup_seconds": 0, "step_seconds": 0, "steps": 1},
                {"device": "cpu", "setup_seconds": 0, "step_seconds": "nan", "steps": 1}, [1]):
        assert Timing.from_dict(bad) is None


def test_job_estimate_takes_the_trainers_steps_and_the_last_measured_pace() -> None:
    spec = TrainerSpec("x:Y", CountingParams, "x", steps=lambda p: p.steps, rough=RoughPace(9.0, 0, "cpu", "bench"))
    got = job_estimate(spec, CountingParams(steps=200), Timing("cpu", 0, 0.5, 40, "j").as_dict())
    assert (got.source, got.steps, got.seconds) == ("measured", 200, 100.0)
    assert job_estimate(spec, CountingParams(steps=10), None).seconds == 90.0


def test_words_for_durations() -> None:
    assert [duration_words(s) for s in (0.2, 40, 89, 720, 3600, 7500)] == ["1 s", "40 s", "1 min", "12 min", "1 h", "2 h 5 min"]


def test_dataset_summary_and_readiness() -> None:
    samples = [Sample("a", "a.wav", 30, 80, "hello there"), Sample("b", "b.wav", 90, 80, None)]
    assert dataset_summary(samples) == {"samples": 2, "minutes": 2.0, "with_transcripts": 1, "minutes_with_transcripts": 0.5}
    spec = TrainerSpec("x:Y", CountingParams, "x")
    found = {"kokoro": spec, "rvc": spec, "counting": spec}
    rules = {"kokoro": Readiness(False, 1, 0.5, ["29 more samples with transcripts (have 1, need 30)"], 0.03),
             "rvc": Readiness(False, 2, 2.0, ["48 more samples (have 2, need 50)"], 0.04)}
    got = trainer_readiness(found, rules, {"rvc": 12})
    assert got["kokoro"]["ready"] is False and got["kokoro"]["missing"] == rules["kokoro"].missing
    assert got["rvc"]["ready"] is True and got["rvc"]["dataset_wavs"] == 12  # an exported folder is trained on as it is
    assert got["counting"]["ready"] is True
