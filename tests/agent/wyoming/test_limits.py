"""The door's own limits: its connection cap under the descriptor limit, and log lines that a
flood cannot multiply."""

from __future__ import annotations

import asyncio.selector_events
import errno
import inspect
import logging
import resource
from typing import Any

import pytest

from agent.wyoming.limits import ACCEPT_FAILED, MAX_CONNECTIONS, Throttled, connection_cap, quiet_accept_failures


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_one_line_per_interval_and_the_next_says_how_many_were_held(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    throttled = Throttled(logging.getLogger("test"), interval=60, clock=clock)
    with caplog.at_level(logging.WARNING):
        assert throttled.warning("refused %s", "a")
        clock.now += 59.9
        assert not throttled.warning("refused %s", "b")
        assert not throttled.warning("refused %s", "c")
        clock.now += 0.1  # exactly one interval after the first line
        assert throttled.warning("refused %s", "d")
        assert not throttled.warning("refused %s", "e")
        clock.now += 60
        assert throttled.warning("refused %s", "f")
        clock.now += 600
        assert throttled.warning("refused %s", "g")
    assert lines(caplog) == [
        "refused a",
        "refused d (and 2 more since the last such line)",
        "refused f (and 1 more since the last such line)",
        "refused g",
    ]


@pytest.mark.parametrize(
    ("soft", "cap"),
    [(1024, MAX_CONNECTIONS), (4 * MAX_CONNECTIONS, MAX_CONNECTIONS), (4 * MAX_CONNECTIONS - 1, MAX_CONNECTIONS - 1),
     (100, 25), (3, 1), (resource.RLIM_INFINITY, MAX_CONNECTIONS)],
)
def test_the_cap_stays_under_a_quarter_of_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch, soft: int, cap: int) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, resource.RLIM_INFINITY))
    assert connection_cap() == cap


class Loop:
    def __init__(self) -> None:
        self.defaults: list[dict[str, Any]] = []

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.defaults.append(context)


def test_failed_accepts_are_one_line_per_interval_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    clock, loop = Clock(), Loop()
    handle = quiet_accept_failures(Throttled(logging.getLogger("agent.wyoming.limits"), interval=60, clock=clock))
    failure = {"message": ACCEPT_FAILED, "exception": OSError(errno.EMFILE, "Too many open files")}
    with caplog.at_level(logging.WARNING):
        for _ in range(30):  # asyncio retries once a second
            handle(loop, failure)  # type: ignore[arg-type]
            clock.now += 1
    assert lines(caplog) == ["Wyoming server cannot accept connections: [Errno 24] Too many open files"]
    assert not any(r.exc_info for r in caplog.records) and loop.defaults == []
    other = {"message": "Task exception was never retrieved", "exception": KeyError("x")}
    handle(loop, other)  # type: ignore[arg-type]
    assert loop.defaults == [other], "anything else is the default handler's"


def test_the_accept_message_is_the_one_asyncio_reports() -> None:
    assert ACCEPT_FAILED in inspect.getsource(asyncio.selector_events)
