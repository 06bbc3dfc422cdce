"""The speak engines' buffers handed back once speech has been idle (agent/speak/idle_release.py),
and the pool's part: the arena setting told to each engine before it loads, every engine asked to
release. A clock of the test's own: nothing here waits."""

from __future__ import annotations

import logging

import pytest

from agent.speak.engines import ProviderPool
from agent.speak.idle_release import IdleRelease


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Count:
    def __init__(self, fails: bool = False) -> None:
        self.calls = 0
        self.fails = fails

    def __call__(self) -> None:
        self.calls += 1
        if self.fails:
            raise RuntimeError("no shrinking today")


def test_released_once_after_the_idle_seconds_and_not_before() -> None:
    clock, release = Clock(), Count()
    idle = IdleRelease(release, 30, clock)
    assert not idle.check() and idle.wait_seconds() is None  # nothing spoken yet: nothing kept
    idle.begin()
    idle.end()
    assert idle.wait_seconds() == 30
    clock.now += 29.9
    assert not idle.check() and release.calls == 0
    clock.now += 0.1
    assert idle.check() and release.calls == 1
    clock.now += 100
    assert not idle.check() and release.calls == 1  # once per idle spell
    idle.begin()
    idle.end()
    clock.now += 30
    assert idle.check() and release.calls == 2


def test_not_while_a_request_is_being_spoken() -> None:
    clock, release = Clock(), Count()
    idle = IdleRelease(release, 30, clock)
    idle.begin()  # profile a
    idle.begin()  # profile b
    idle.end()  # a ends; b speaks on
    clock.now += 60
    assert idle.wait_seconds() is None and not idle.check() and release.calls == 0
    idle.end()
    clock.now += 29
    assert not idle.check()  # counted from the last end
    clock.now += 1
    assert idle.check() and release.calls == 1


def test_a_release_that_fails_is_logged_and_speech_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock, release = Clock(), Count(fails=True)
    idle = IdleRelease(release, 1, clock)
    idle.begin()
    idle.end()
    clock.now += 1
    with caplog.at_level(logging.ERROR):
        assert idle.check()
    assert "idle memory" in caplog.text


class Engine:
    def __init__(self, name: str, fails: bool = False) -> None:
        self.name = name
        self.arena: bool | None = None
        self.released = 0
        self.fails = fails

    def use_arena(self, arena: bool) -> None:
        self.arena = arena

    def release_memory(self) -> None:
        self.released += 1
        if self.fails:
            raise RuntimeError("cannot")


class Plain:
    """An engine without an arena (GPT-SoVITS, RVC): neither hook."""

    name = "plain"


@pytest.mark.parametrize("arena", [True, False])
def test_the_pool_tells_each_engine_the_arena_setting(arena: bool) -> None:
    a = Engine("a")
    made = {"a": a, "plain": Plain()}
    pool = ProviderPool(factory=lambda name: made[name], arena=arena)  # type: ignore[arg-type,return-value]
    pool.get("a")
    assert a.arena is arena
    pool.get("plain")


def test_the_pool_asks_every_engine_to_release_even_past_one_that_fails() -> None:
    a, b = Engine("a", fails=True), Engine("b")
    made = {"a": a, "plain": Plain(), "b": b}
    pool = ProviderPool(factory=lambda name: made[name])  # type: ignore[arg-type,return-value]
    for name in made:
        pool.get(name)
    pool.release_memory()
    assert a.released == 1 and b.released == 1
