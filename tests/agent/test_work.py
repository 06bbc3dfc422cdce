"""Bounded work: the command pools that say busy instead of queueing without end, and the byte
budget that recordings and stream frames wait in."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from agent.errors import ServiceError
from agent.work import BoundedExecutor, ByteBudget


def refusal(executor: BoundedExecutor) -> tuple[str, str]:
    with pytest.raises(ServiceError) as refused:
        executor.submit(print)
    return refused.value.code, str(refused.value)


def fill(executor: BoundedExecutor, go: threading.Event, count: int) -> list[Future[str]]:
    """``count`` commands that wait for ``go``: one runs (a worker each), the rest queue."""
    def work(n: int) -> str:
        go.wait()
        return f"done {n}"

    return [executor.submit(work, n) for n in range(count)]


def test_depth_commands_wait_or_run_and_one_more_is_busy_until_they_are_done() -> None:
    executor = BoundedExecutor("samples", 1, 2)
    go = threading.Event()
    try:
        first = fill(executor, go, 2)  # exactly the depth: one runs, one waits
        assert refusal(executor) == ("busy", "2 samples requests are already waiting; try again later")
        go.set()
        assert [f.result(timeout=10) for f in first] == ["done 0", "done 1"]  # the arguments reach the work
        go.clear()
        again = fill(executor, go, 2)  # the finished ones have given their places back, both of them
        assert refusal(executor)[0] == "busy"
        go.set()
        assert [f.result(timeout=10) for f in again] == ["done 0", "done 1"]
    finally:
        go.set()
        executor.shutdown()


def test_the_pools_threads_carry_its_name() -> None:
    executor = BoundedExecutor("samples", 1, 2)
    try:
        assert executor.submit(lambda: threading.current_thread().name).result(timeout=10).startswith("samples_")
    finally:
        executor.shutdown()


def test_a_stopped_pool_refuses_and_cancels_what_waited() -> None:
    executor = BoundedExecutor("train", 1, 4)
    go = threading.Event()
    running, waiting = fill(executor, go, 2)
    executor.shutdown(wait=False)
    assert waiting.cancelled() and not running.cancelled()
    assert refusal(executor) == ("shutting_down", "the agent is stopping")
    go.set()
    assert running.result(timeout=10) == "done 0"


def test_stopping_waits_for_the_running_command_by_default() -> None:
    executor = BoundedExecutor("train", 1, 4)
    go, started = threading.Event(), threading.Event()
    order: list[str] = []

    def work() -> None:
        started.set()
        go.wait()
        order.append("work done")

    executor.submit(work)
    assert started.wait(10)
    def stop() -> None:
        executor.shutdown()
        order.append("stopped")

    stopper = threading.Thread(target=stop)
    stopper.start()
    stopper.join(0.3)  # a stop that does not wait has returned by now (the order below tells it)
    go.set()
    stopper.join(10)
    assert order == ["work done", "stopped"]


def test_bytes_up_to_the_limit_are_taken_one_more_is_not() -> None:
    budget = ByteBudget(10)
    assert budget.take(4) and budget.take(6)  # exactly at the limit
    assert budget.held == 10
    assert not budget.take(1)  # one byte over
    assert budget.held == 10  # a refusal holds nothing


def test_released_bytes_make_room_again() -> None:
    budget = ByteBudget(10)
    assert budget.take(4) and budget.take(6)
    budget.release(6)
    assert budget.held == 4
    assert budget.take(6) and not budget.take(1)


def test_one_piece_alone_is_taken_however_large() -> None:
    """What the door let in (a recording up to VOICE_AGENT_MAX_AUDIO_BYTES) is never refused for
    good: alone it is taken, and what comes after it waits for it to go."""
    budget = ByteBudget(10)
    assert budget.take(11)
    assert not budget.take(1)
    budget.release(11)
    assert budget.held == 0 and budget.take(10)


def test_nothing_is_refused_for_free() -> None:
    budget = ByteBudget(10)
    assert budget.take(10) and budget.take(0)  # an empty message (a stream's stop) costs nothing


def test_a_hold_grows_up_to_the_limit_one_byte_more_is_refused() -> None:
    """A body without a length grows its hold as it arrives, within the same bound."""
    budget = ByteBudget(10)
    assert budget.take(4)
    hold = budget.hold(0)
    assert hold is not None and hold.grow(3) and hold.grow(3)  # exactly at the limit
    assert not hold.grow(1)
    assert (hold.size, budget.held) == (6, 10)  # a refusal holds nothing more


def test_alone_a_hold_grows_past_the_limit() -> None:
    """What the door lets in alone is never refused for good, whether it said its length or not."""
    budget = ByteBudget(10)
    hold = budget.hold(8)
    assert hold is not None and hold.grow(5)
    assert budget.held == 13 and budget.hold(1) is None


def test_a_hold_is_given_back_once_whoever_releases_it() -> None:
    budget = ByteBudget(10)
    hold = budget.hold(6)
    assert hold is not None
    job = hold.pass_on()
    assert job is not None and job.size == 6
    hold.release()  # the reader's release, after the job took the bytes over
    assert budget.held == 6
    assert hold.pass_on() is None and not hold.grow(1)
    job.release()
    job.release()
    assert budget.held == 0
