"""The watchdog's rule: a speak worker is stuck when its request has shown no progress for the
limit, not when it has merely run that long."""

from __future__ import annotations

from agent.speak.progress import Heartbeats


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_progress_for_exactly_the_limit_is_stuck() -> None:
    clock = Clock()
    beats = Heartbeats(clock)
    beats.begin("default")
    clock.now += 299.75
    assert beats.stuck(300) == []
    clock.now += 0.25  # exact in binary: the limit itself, not a rounding of it
    assert beats.stuck(300) == ["default"]


def test_progress_resets_the_wait() -> None:
    clock = Clock()
    beats = Heartbeats(clock)
    beats.begin("default")
    for _ in range(10):  # a request of 2000 s that makes audio every 200 s
        clock.now += 200
        beats.beat("default")
        assert beats.stuck(300) == []
    clock.now += 299
    assert beats.stuck(300) == []
    clock.now += 1
    assert beats.stuck(300) == ["default"]


def test_only_the_profile_without_progress_is_stuck() -> None:
    clock = Clock()
    beats = Heartbeats(clock)
    beats.begin("default")
    beats.begin("kitchen")
    clock.now += 200
    beats.beat("kitchen")
    clock.now += 100
    assert beats.stuck(300) == ["default"]


def test_a_finished_request_is_not_watched() -> None:
    clock = Clock()
    beats = Heartbeats(clock)
    beats.begin("default")
    assert beats.working("default")
    beats.end("default")
    clock.now += 1000
    assert beats.stuck(300) == [] and not beats.working("default")
    beats.beat("default")  # a late beat does not bring a finished request back
    assert not beats.working("default") and beats.stuck(0) == []
