"""The record path's keep policy: which samples and exported datasets go."""

from __future__ import annotations

import os
from pathlib import Path

from agent.record.config import KeepConfig
from agent.record.keep import DAY, exports_beyond, remove_exports, samples_to_prune
from agent.record.store import Sample

NOW = 1_800_000_000.0


def sample(name: str, score: float, age_days: float = 0.0) -> Sample:
    return Sample(name, NOW - age_days * DAY, f"{name}.wav", 2.0, 16000, None, score, {}, {}, None, None)


def test_within_the_policy_nothing_goes() -> None:
    samples = [sample("a", 10), sample("b", 90, age_days=400)]
    assert samples_to_prune(samples, KeepConfig(maxSamples=2), NOW) == {}


def test_beyond_the_count_the_lowest_scores_go_whatever_their_age() -> None:
    samples = [sample("old-best", 95, 30), sample("new-low", 60), sample("mid", 80, 2), sample("new-lowest", 55)]
    gone = samples_to_prune(samples, KeepConfig(maxSamples=2), NOW)
    assert sorted(gone) == ["new-low", "new-lowest"]
    assert gone["new-low"] == "more than 2 samples kept; its score 60 is among the lowest"


def test_equal_scores_keep_the_newer() -> None:
    samples = [sample("older", 80, 2), sample("newer", 80, 1)]
    assert list(samples_to_prune(samples, KeepConfig(maxSamples=1), NOW)) == ["older"]


def test_age_goes_first_and_counts_towards_the_cap() -> None:
    samples = [sample("ancient", 99, 10), sample("a", 70), sample("b", 75)]
    gone = samples_to_prune(samples, KeepConfig(maxSamples=2, maxDays=7), NOW)
    assert gone == {"ancient": "older than 7 days"}  # the two left fit the cap
    assert samples_to_prune([sample("edge", 50, 7)], KeepConfig(maxDays=7), NOW + 1) == {"edge": "older than 7 days"}
    assert samples_to_prune([sample("edge", 50, 7)], KeepConfig(maxDays=7), NOW) == {}


def folders(parent: Path, *names: str) -> None:
    for age, name in enumerate(names):  # the first name is the newest
        (parent / name).mkdir(parents=True)
        os.utime(parent / name, (NOW - age, NOW - age))


def test_the_oldest_exports_beyond_the_cap_go_never_the_protected(tmp_path: Path) -> None:
    folders(tmp_path, "new", "speaking", "mid", "old", "oldest")
    (tmp_path / ".staging.new").mkdir()  # a half-written export is not counted or removed
    old = exports_beyond(tmp_path, 2, {"speaking", "new"})
    assert [p.name for p in old] == ["mid", "old", "oldest"]
    assert [p.name for p in exports_beyond(tmp_path, 3, {"oldest"})] == ["mid", "old"]  # protected ones count
    assert remove_exports(old) == ["mid", "old", "oldest"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging.new", "new", "speaking"]
    assert exports_beyond(tmp_path / "none", 1, set()) == []
