"""The record path's verdicts in plain words: refusal codes, weak components and errors."""

from __future__ import annotations

from agent.record.quality import Measurements, score
from agent.record.words import error_words, say

GOOD = {"speech_ratio": 90.0, "snr": 95.0, "clipping": 100.0, "level": 100.0, "duration": 100.0, "dnsmos": 90.0}


def test_refusals_are_said_in_plain_words() -> None:
    m = Measurements(speech_ratio=0.8, snr_db=1.0, clipped_fraction=0.0, level_dbfs=-25.0, seconds=3.0,
                     speaker_similarity=0.4)
    result = score(m, 0.7)
    assert result.codes == ["steady_noise", "another_speaker"]
    assert say(result.codes, {}, {}) == ["background noise", "another speaker"]


def test_a_low_score_is_said_by_its_weak_components_weakest_first() -> None:
    components = {**GOOD, "level": 10.0, "snr": 40.0}
    assert say([], components, {"level_dbfs": -48.0, "seconds": 3.0}, low_score=True) == ["too quiet", "background noise"]
    assert say([], {**GOOD, "level": 20.0}, {"level_dbfs": -4.0}, low_score=True) == ["too loud"]
    assert say([], {**GOOD, "duration": 10.0}, {"seconds": 0.8}, low_score=True) == ["too short"]
    assert say([], {**GOOD, "speaker": 0.0}, {}, low_score=True) == ["another speaker"]
    assert say([], GOOD, {}, low_score=True) == ["a low score"]  # below the threshold with no weak part
    assert say([], GOOD, {}) == []  # a good take: nothing to say


def test_each_thing_is_said_once() -> None:
    components = {**GOOD, "speaker": 0.0}
    assert say(["another_speaker"], components, {}) == ["another speaker"]
    assert say(["transcript_mismatch"], GOOD, {}) == ["other words than the sentence"]


def test_errors_of_the_record_path_in_words() -> None:
    assert error_words("no_speech").startswith("no speech heard")
    assert "busy" in error_words("busy")
    assert error_words("something_new") == "something new"
