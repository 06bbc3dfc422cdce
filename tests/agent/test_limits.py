"""What the doors share against floods: a log line at most once per interval that tells how many
it held back; a door's connection cap at most an eighth of the open-file limit, accepted in
batches of half the cap; asyncio's failed accepts as such a line instead of a traceback each."""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import errno
import inspect
import logging
import resource

import pytest

from agent import limits
from agent.limits import ThrottledLog, accept_batch, connection_cap, log_accept_failures, open_file_limit

log = logging.getLogger("tests.limits")


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tests.limits"]


def test_a_line_at_most_once_per_interval_then_how_many_were_held(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lines = ThrottledLog(log, interval=60, clock=clock)
    with caplog.at_level(logging.WARNING, "tests.limits"):
        assert lines.warning("refused %s", "a") is True
        clock.now += 59.9
        assert lines.warning("refused %s", "b") is False
        assert lines.warning("refused %s", "c") is False
        clock.now += 0.1  # 60 s after the first line
        assert lines.warning("refused %s", "d") is True
        clock.now += 60
        assert lines.warning("refused %s", "e") is True
    assert messages(caplog) == ["refused a", "refused d (2 more like it in the last 60 s)", "refused e"]


def test_the_interval_is_a_minute_unless_told(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lines = ThrottledLog(log, clock=clock)
    with caplog.at_level(logging.WARNING, "tests.limits"):
        assert lines.warning("refused") is True
        clock.now += 59.9
        assert lines.warning("refused") is False
        clock.now += 0.1
        assert lines.warning("refused") is True
    assert messages(caplog) == ["refused", "refused (1 more like it in the last 60 s)"]


def test_the_open_file_limit_is_the_soft_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The soft limit is where opening fails; the hard one only bounds what it may be raised to."""
    monkeypatch.setattr(limits.resource, "getrlimit", lambda which: (1024, 524288))
    assert open_file_limit() == 1024
    assert connection_cap(256) == 128


@pytest.mark.parametrize(("wanted", "limit", "cap"), [
    (256, 1024, 128), (256, 2048, 256), (256, 2056, 256), (100, 1024, 100), (256, 1031, 128), (256, 1032, 129),
    (256, 4, 1), (256, resource.RLIM_INFINITY, 256),
])
def test_a_door_holds_at_most_an_eighth_of_the_open_files(wanted: int, limit: int, cap: int) -> None:
    assert connection_cap(wanted, limit) == cap


@pytest.mark.parametrize(("cap", "batch"), [(1, 1), (2, 1), (3, 1), (64, 32), (256, 128), (258, 128), (1024, 128)])
def test_connections_are_accepted_in_batches_of_half_the_cap(cap: int, batch: int) -> None:
    assert accept_batch(cap) == batch


def test_failed_accepts_are_a_line_an_interval_and_the_rest_goes_on_as_before(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        log_accept_failures(loop, ThrottledLog(log), "HTTP API")
        with caplog.at_level(logging.WARNING):
            for _ in range(500):
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(errno.EMFILE, "Too many open files")})
            loop.call_exception_handler({"message": "Exception in callback BaseSelectorEventLoop._start_serving()",
                                         "exception": ValueError("Invalid file descriptor: -1"),
                                         "handle": "<TimerHandle BaseSelectorEventLoop._start_serving(...)>"})
            loop.call_exception_handler({"message": "something else", "exception": RuntimeError("other")})
    finally:
        loop.close()
    assert messages(caplog) == ["HTTP API cannot accept connections: Too many open files"]
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == ["something else"]
    assert all(r.exc_info is None for r in caplog.records if r.name == "tests.limits")


def test_a_failed_accept_without_an_exception_is_told_by_its_message(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        log_accept_failures(loop, ThrottledLog(log), "Wyoming")
        with caplog.at_level(logging.WARNING):
            loop.call_exception_handler({"message": "socket.accept() out of system resource"})
    finally:
        loop.close()
    assert messages(caplog) == ["Wyoming cannot accept connections: socket.accept() out of system resource"]


def test_the_accept_failure_is_told_in_asyncios_own_words() -> None:
    """What ``is_accept_failure`` matches is what this Python's asyncio says."""
    source = inspect.getsource(asyncio.selector_events)
    assert "socket.accept() out of system resource" in source and "_start_serving" in source
