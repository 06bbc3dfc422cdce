"""The echo guard (agent/record/echo.py): an utterance that overlaps the agent's own speech, by
profile or by Hermes site, is not a sample; one that began after the window closed is."""

from __future__ import annotations

import pytest

from agent.record.echo import TAIL, OwnSpeech


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def test_nothing_spoken_overlaps_nothing(clock: Clock) -> None:
    assert TAIL == 1.0
    assert not OwnSpeech(clock).overlaps(("default", "site:kitchen"), 5.0)


def test_an_utterance_that_began_before_the_window_closed_overlaps(clock: Clock) -> None:
    own = OwnSpeech(clock)
    own.spoke("default", 2.0)  # the window closes at 103 (2 s of audio and the 1 s tail)
    clock.now = 104.0
    assert own.overlaps(("default",), 1.5)  # began at 102.5
    assert not own.overlaps(("default",), 1.0)  # began at 103.0: exactly at the close
    assert not own.overlaps(("other",), 10.0)  # another profile's speech
    assert own.overlaps(("other", "default"), 1.5)


def test_a_shorter_later_speech_does_not_shorten_the_window(clock: Clock) -> None:
    own = OwnSpeech(clock)
    own.spoke("default", 10.0)  # closes at 111
    clock.now = 101.0
    own.spoke("default", 0.5)  # would close at 102.5
    clock.now = 112.0
    assert own.overlaps(("default",), 1.5)  # began at 110.5


def test_a_play_in_progress_overlaps_until_it_finishes_and_its_tail_passes(clock: Clock) -> None:
    own = OwnSpeech(clock)
    own.started("site:kitchen")
    own.started("site:kitchen")
    clock.now = 500.0
    assert own.overlaps(("site:kitchen",), 0.1)
    own.finished("site:kitchen")
    clock.now = 550.0  # long past the finished play's tail
    assert own.overlaps(("site:kitchen",), 0.1)  # one of two plays still going
    clock.now = 600.0
    own.finished("site:kitchen")  # the window now closes at 601
    clock.now = 601.5
    assert own.overlaps(("site:kitchen",), 0.6)  # began at 600.9
    assert not own.overlaps(("site:kitchen",), 0.5)  # began at 601.0


def test_a_finish_without_a_start_does_not_go_below_zero(clock: Clock) -> None:
    own = OwnSpeech(clock)
    own.finished("site:x")
    own.started("site:x")
    assert own.overlaps(("site:x",), 0.0)
    own.finished("site:x")
    clock.now = 200.0
    assert not own.overlaps(("site:x",), 1.0)


def test_a_finish_keeps_a_longer_window_already_open(clock: Clock) -> None:
    own = OwnSpeech(clock)
    own.spoke("site:x", 30.0)  # closes at 131
    own.started("site:x")
    clock.now = 101.0
    own.finished("site:x")  # would close at 102
    clock.now = 131.5
    assert own.overlaps(("site:x",), 1.0)


def test_a_key_never_heard_does_not_overlap_even_at_the_clocks_start(clock: Clock) -> None:
    clock.now = 0.5
    own = OwnSpeech(clock)
    own.spoke("default", 0.0)
    assert not own.overlaps(("site:x",), 0.0)
    assert own.overlaps(("default",), 0.0)


def test_the_clock_defaults_to_monotonic_time() -> None:
    own = OwnSpeech()
    own.spoke("default", 0.0)
    assert own.overlaps(("default",), 0.0)
