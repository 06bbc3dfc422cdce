"""The idle window's edges (agent/train/schedule.py): the start is in, the end is out, on both
sides of midnight; minutes count; an empty window is never open; the wait left is what is left."""

from __future__ import annotations

from datetime import datetime
from datetime import time as clock_time

import pytest

from agent.train.schedule import IdlePolicy, in_window, parse_window


def test_a_window_keeps_its_minutes() -> None:
    assert parse_window("01:30-06:45") == (clock_time(1, 30), clock_time(6, 45))


@pytest.mark.parametrize(("window", "at", "inside"), [
    ("01:30-06:45", (1, 30), True), ("01:30-06:45", (1, 29), False), ("01:30-06:45", (6, 44), True),
    ("01:30-06:45", (6, 45), False),
    ("22:15-02:10", (22, 15), True), ("22:15-02:10", (22, 14), False), ("22:15-02:10", (2, 9), True),
    ("22:15-02:10", (2, 10), False), ("22:15-02:10", (0, 0), True),
    ("05:00-05:00", (5, 0), False), ("05:00-05:00", (4, 59), False),
])
def test_the_start_is_in_and_the_end_is_out(window: str, at: tuple[int, int], inside: bool) -> None:
    assert in_window(datetime(2026, 1, 1, *at), parse_window(window)) is inside


def test_the_wait_left_counts_down() -> None:
    mono = [1000.0]
    idle = IdlePolicy(parse_window("00:00-23:59"), 600, now=lambda: datetime(2026, 1, 1, 12), monotonic=lambda: mono[0])
    idle.touch()
    mono[0] += 100
    assert idle.why_waiting() == "waiting for 500 s more without speech or recordings"
    outside = IdlePolicy(parse_window("01:05-06:00"), 600, now=lambda: datetime(2026, 1, 1, 12))
    assert outside.why_waiting() == "waiting for the idle window 01:05-06:00"
