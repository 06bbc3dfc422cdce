"""At start the agent raises its soft open-file limit towards 4096, at most to the hard limit:
under a soft 1024 (a shell's, systemd's) the doors' caps are then their settings, and the cap
warning is left for a hard limit that is really low. It never lowers the limit."""

from __future__ import annotations

import logging
import resource
from typing import Any

import pytest

from agent import limits
from agent.limits import raise_open_file_limit

INF = resource.RLIM_INFINITY


class Limits:
    """resource.getrlimit/setrlimit for RLIMIT_NOFILE, on a pair of numbers."""

    def __init__(self, soft: int, hard: int) -> None:
        self.soft, self.hard = soft, hard
        self.set: list[tuple[int, int]] = []

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def setrlimit(self, which: int, pair: tuple[int, int]) -> None:
        assert which == resource.RLIMIT_NOFILE
        soft, hard = pair
        if hard != self.hard or (self.hard != INF and (soft == INF or soft > self.hard)):
            raise ValueError("not allowed to raise maximum limit")
        self.set.append(pair)
        self.soft = soft


@pytest.fixture()
def fake(monkeypatch: Any) -> Any:
    def make(soft: int, hard: int) -> Limits:
        state = Limits(soft, hard)
        monkeypatch.setattr(limits.resource, "getrlimit", state.getrlimit)
        monkeypatch.setattr(limits.resource, "setrlimit", state.setrlimit)
        return state

    return make


def infos(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "agent.limits" and r.levelno == logging.INFO]


@pytest.mark.parametrize(("soft", "hard", "after"), [
    (1024, 524288, 4096),  # systemd's default pair: up to what is wanted
    (1024, INF, 4096),  # no hard limit: what is wanted, not unlimited
    (256, 2048, 2048),  # a hard limit below 4096: up to it
    (1024, 4097, 4096),  # one above: what is wanted
    (1024, 4096, 4096),  # exactly at it
    (4095, 8192, 4096),  # one below what is wanted: raised
])
def test_the_soft_limit_is_raised_to_4096_at_most_the_hard_limit(
    fake: Any, caplog: pytest.LogCaptureFixture, soft: int, hard: int, after: int,
) -> None:
    state = fake(soft, hard)
    with caplog.at_level(logging.INFO, "agent.limits"):
        assert raise_open_file_limit() == after
    assert state.set == [(after, hard)]
    assert infos(caplog) == [f"open-file limit raised from {soft} to {after} (hard limit "
                             f"{'unlimited' if hard == INF else hard})"]


@pytest.mark.parametrize(("soft", "hard"), [
    (4096, 524288),  # already there
    (65536, 524288),  # already higher: never lowered
    (INF, INF),  # unlimited
    (256, 256),  # the hard limit is the soft one: nothing to raise (the doors' cap warning says so)
])
def test_a_limit_already_high_enough_or_at_the_hard_limit_is_left_alone_silently(
    fake: Any, caplog: pytest.LogCaptureFixture, soft: int, hard: int,
) -> None:
    state = fake(soft, hard)
    with caplog.at_level(logging.INFO, "agent.limits"):
        assert raise_open_file_limit() == soft
    assert state.set == [] and infos(caplog) == []


def test_a_refused_raise_is_a_warning_and_the_limit_stays(fake: Any, monkeypatch: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    fake(1024, 524288)

    def refuse(which: int, pair: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(limits.resource, "setrlimit", refuse)
    with caplog.at_level(logging.INFO, "agent.limits"):
        assert raise_open_file_limit() == 1024
    assert infos(caplog) == [] and "cannot raise the open-file limit from 1024 to 4096" in caplog.text


def test_the_real_limit_is_raised_in_this_process() -> None:
    """No fake: what the process may do itself (the hard limit is left as it is)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        raise_open_file_limit(512)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (min(512, hard), hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
