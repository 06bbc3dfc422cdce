from __future__ import annotations

from datetime import datetime

import pytest

from agent.train.schedule import IdlePolicy, in_window, parse_window


class Clock:
    def __init__(self) -> None:
        self.wall = datetime(2026, 11, 24, 12, 0)
        self.mono = 1000.0


def policy(clock: Clock, window: str = "01:00-06:00", quiet: float = 600) -> IdlePolicy:
    return IdlePolicy(parse_window(window), quiet, now=lambda: clock.wall, monotonic=lambda: clock.mono)


@pytest.mark.parametrize(
    ("window", "hour", "inside"),
    [("01:00-06:00", 0, False), ("01:00-06:00", 1, True), ("01:00-06:00", 5, True), ("01:00-06:00", 6, False),
     ("22:00-06:00", 23, True), ("22:00-06:00", 3, True), ("22:00-06:00", 12, False)],
)
def test_window(window: str, hour: int, inside: bool) -> None:
    assert in_window(datetime(2026, 1, 1, hour, 30), parse_window(window)) is inside


@pytest.mark.parametrize("text", ["1:00-6:00", "25:00-06:00", "01:00", ""])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError, match="01:00-06:00"):
        parse_window(text)


def test_idle_needs_the_window_and_quiet() -> None:
    clock = Clock()
    idle = policy(clock)
    assert not idle.is_idle() and "idle window" in idle.why_waiting()  # noon
    clock.wall = datetime(2026, 11, 25, 2, 0)
    assert idle.is_idle()  # quiet since start
    idle.on_event("default", "speak.started", {})
    assert not idle.is_idle() and "without speech" in idle.why_waiting()
    clock.mono += 599
    assert not idle.is_idle()
    clock.mono += 2
    assert idle.is_idle()
    idle.on_event("default", "config.reloaded", {})  # not household activity
    assert idle.is_idle()
    idle.on_event("default", "sample.captured", {})
    assert not idle.is_idle()
