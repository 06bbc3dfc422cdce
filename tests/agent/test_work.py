"""Bounded work: the byte budget that recordings and stream frames wait in."""

from __future__ import annotations

from agent.work import ByteBudget


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
