"""A profile whose samples database is damaged, or cannot be opened at all: its record path alone
goes down (it once stopped the whole agent at start-up), with the reason in its state and in
``problems()``, and a damaged database is rebuilt from the WAVs beside it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config.store import ConfigStore
from agent.core import Core
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.record.analysis import Analysis
from agent.record.requests import RecordRequest
from agent.record.service import RecordService
from agent.settings import AgentSettings
from tests.agent.record.test_service import Bus, FakeAnalyser, scored
from tests.conftest import make_home

GARBAGE = b"not a database at all\n" * 1000
ORPHAN = "20260101-120000-abcdef.wav"


def kitchen_with_a_damaged_database(home: Path) -> Path:
    """The kitchen's out/ folder: one sample's WAV, and a database that is not one."""
    out = home / "profiles" / "kitchen" / "out"
    (out / "voices" / "samples").mkdir(parents=True)
    (out / "voices" / "samples" / ORPHAN).write_bytes(b"RIFF-kitchen")
    (out / "voice-agent.db").write_bytes(GARBAGE)
    return out


@pytest.fixture()
def two(tmp_path: Path) -> Iterator[tuple[RecordService, FakeAnalyser, Bus, Path]]:
    for profile in ("default", "kitchen"):
        (tmp_path / "profiles" / profile / "etc").mkdir(parents=True)
    layout = Layout(tmp_path)
    bus = Bus()
    events, state = EventBus(), StateBoard()
    events.listen(bus.event)
    state.watch(bus.state_changed)
    analyser = FakeAnalyser()
    service = RecordService(layout, ConfigStore(layout, events), events, state, 4, analyser)
    yield service, analyser, bus, tmp_path
    analyser.gate = None
    service.stop()


def kept(service: RecordService, analyser: FakeAnalyser, profile: str) -> list[dict[str, Any]]:
    analyser.results.append(Analysis(2.0, [scored(80.0)], []))
    return list(service.submit(profile, RecordRequest(audio=b"RIFF")).result(10)["kept"])


def wait_for(condition: Any, what: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.02)


def test_a_damaged_database_is_set_aside_and_rebuilt_from_its_wavs(two: Any) -> None:
    service, analyser, bus, home = two
    assert kept(service, analyser, "default")
    out = kitchen_with_a_damaged_database(home)
    analyser.gate, analyser.entered = threading.Event(), threading.Event()
    analyser.results.append(Analysis(2.0, [scored(85.0)], []))  # the orphan, scored again
    service.open("kitchen")  # as at start-up: no exception reaches the agent
    [aside] = out.glob("voice-agent.db.corrupt-*")
    assert aside.read_bytes() == GARBAGE
    why = (f"voice-agent.db was damaged (file is not a database) and is kept as {aside.name}; 1 sample(s) are "
           "scored again from their WAVs (their transcripts and the enrolled voice were in it)")
    assert service.problems() == [f"profile 'kitchen': {why}"]
    assert bus.state("kitchen")["record_problem"] == why
    assert "record_problem" not in bus.state("default")
    assert analyser.entered.wait(10)  # the orphan is being scored: the profile is not whole yet
    assert service.problems() == [f"profile 'kitchen': {why}"]
    analyser.gate.set()
    wait_for(lambda: bus.events("kitchen:sample.reimported"), lambda: bus.told)
    assert service.problems() == []  # cleared before the event that tells of the last orphan
    assert bus.state("kitchen")["record_problem"] is None and bus.state("kitchen")["samples"] == 1
    [reimported] = bus.events("kitchen:sample.reimported")
    assert reimported["file"] == ORPHAN and [s.id for s in service.store("kitchen").list()] == reimported["kept"]
    assert kept(service, analyser, "kitchen") and len(kept(service, analyser, "default")) == 1  # both record


def test_a_damaged_database_without_samples_is_whole_again_at_once(two: Any) -> None:
    service, analyser, bus, home = two
    (home / "profiles" / "kitchen" / "out").mkdir(parents=True)
    (home / "profiles" / "kitchen" / "out" / "voice-agent.db").write_bytes(GARBAGE)
    service.open("kitchen")
    assert bus.state("kitchen")["record_problem"].startswith("voice-agent.db was damaged (file is not a database)")
    wait_for(lambda: not service.problems(), service.problems)  # nothing to score again
    assert bus.state("kitchen")["record_problem"] is None


def test_a_database_that_cannot_be_opened_takes_down_only_its_profiles_record_path(two: Any) -> None:
    service, analyser, bus, home = two
    db = home / "profiles" / "kitchen" / "out" / "voice-agent.db"
    db.mkdir(parents=True)  # not a file at all: nothing to set aside, nothing to rebuild
    service.open("kitchen")
    why = "record path down: cannot open voice-agent.db: unable to open database file"
    assert service.problems() == [f"profile 'kitchen': {why}"]
    assert bus.state("kitchen")["record_problem"] == why
    analyser.results.append(Analysis(2.0, [scored(80.0)], []))
    with pytest.raises(ServiceError) as refused:
        service.submit("kitchen", RecordRequest(audio=b"RIFF")).result(10)
    assert (refused.value.code, str(refused.value)) == ("record_unavailable", why)
    with pytest.raises(ServiceError):
        service.publish_readiness("kitchen")
    assert kept(service, analyser, "default")  # the other profile goes on
    analyser.results.clear()
    db.rmdir()  # mended: the next use opens it
    assert service.store("kitchen").list() == [] and service.problems() == []
    assert bus.state("kitchen")["record_problem"] is None


def test_the_agents_health_names_the_profile_but_the_watchdog_is_fed(tmp_path: Path) -> None:
    """A restart would not mend a damaged disk, and would stop every profile: systemd's watchdog
    hears only of what a restart mends (``stuck``); ``/api/health`` hears of both."""
    home = make_home(tmp_path, profiles=("default", "kitchen"))
    (home / "profiles" / "kitchen" / "out" / "voice-agent.db").mkdir(parents=True)
    core = Core(AgentSettings(home=home))
    core.start()  # opens every profile's store: one that cannot be opened is no reason to stop
    try:
        assert core.problems() == ["profile 'kitchen': record path down: cannot open voice-agent.db: "
                                   "unable to open database file"]
        assert core.stuck() == []
    finally:
        core.stop()
