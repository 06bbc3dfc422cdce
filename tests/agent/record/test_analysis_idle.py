"""The analysis process gives its memory back when idle: it exits after ``idle_seconds`` without
work, the next call starts it again, and that call's result says how long the warm-up took.
Real processes (spawned as the agent spawns them), with a warm-up that loads nothing."""

from __future__ import annotations

import os
import time

import psutil

from agent.record.analysis import AnalysisWorker


def no_models() -> None:
    """The warm-up of a process that needs no models (the real one loads DNSMOS and Resemblyzer)."""


def nap_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def wait_stopped(worker: AnalysisWorker, pid: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while (worker.running or psutil.pid_exists(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_process_exits_when_idle_and_its_next_start_says_its_warmup() -> None:
    worker = AnalysisWorker(idle_seconds=0.3, warm=no_models)
    try:
        first = worker.run(os.getpid)
        warmup = worker.take_warmup()
        assert first != os.getpid() and warmup is not None and warmup >= 0
        assert worker.take_warmup() is None  # said once, by the first result after the start

        wait_stopped(worker, first)
        assert not worker.running and not psutil.pid_exists(first)  # exited: its memory returned

        second = worker.run(os.getpid)
        assert second != first and worker.take_warmup() is not None  # started again, and says so
    finally:
        worker.close()


def test_a_call_longer_than_the_idle_time_keeps_its_process() -> None:
    worker = AnalysisWorker(idle_seconds=2.0, warm=no_models)
    try:
        first = worker.run(os.getpid)
        assert worker.run(nap_then_pid, 4.0) == first
        assert worker.running  # busy is not idle: the idle time counts from the end of the last call
        assert worker.run(os.getpid) == first and worker.take_warmup() is not None  # the first start's, untaken
        assert worker.take_warmup() is None
    finally:
        worker.close()
