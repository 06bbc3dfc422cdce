"""A store that takes long to open (an integrity check of a large database, a WAV folder to
reconcile, a rebuild) holds up only who needs that profile's store: ``problems()`` (what
``/api/health`` asks) and the other profiles answer meanwhile; two callers of the same profile
open it once. (``problems()`` waited behind the open before: health blocked the HTTP loop.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from agent.config.store import ConfigStore
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.record import service as service_module
from agent.record.service import RecordService
from agent.record.store import SampleStore
from tests.agent.record.test_service import FakeAnalyser


class SlowOpen:
    """``open_store`` for the kitchen waits at ``gate``; ``entered`` says it is waiting."""

    def __init__(self) -> None:
        self.gate, self.entered = threading.Event(), threading.Event()
        self.opened: list[str] = []
        self._real = service_module.open_store

    def __call__(self, samples_dir: Path, db_path: Path) -> Any:
        profile = db_path.parent.parent.name
        self.opened.append(profile)
        if profile == "kitchen":
            self.entered.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return self._real(samples_dir, db_path)


@pytest.fixture()
def slow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RecordService, SlowOpen]]:
    for profile in ("default", "kitchen"):
        (tmp_path / "profiles" / profile / "etc").mkdir(parents=True)
    layout, events = Layout(tmp_path), EventBus()
    opener = SlowOpen()
    monkeypatch.setattr(service_module, "open_store", opener)
    service = RecordService(layout, ConfigStore(layout, events), events, StateBoard(), 4, FakeAnalyser())
    yield service, opener
    opener.gate.set()
    service.stop()


def opening(service: RecordService, opener: SlowOpen) -> Future[SampleStore]:
    """The kitchen's store, being opened (and held up) on a thread of its own."""
    future: Future[SampleStore] = Future()
    threading.Thread(target=lambda: future.set_result(service.store("kitchen")), daemon=True).start()
    assert opener.entered.wait(10)
    return future


def answers(call: Any) -> Any:
    """What ``call`` answers on another thread, while the kitchen's store is still opening."""
    future: Future[Any] = Future()
    threading.Thread(target=lambda: future.set_result(call()), daemon=True).start()
    return future.result(10)


def test_problems_answer_while_a_store_is_opening(slow: tuple[RecordService, SlowOpen]) -> None:
    service, opener = slow
    kitchen = opening(service, opener)
    assert answers(service.problems) == []
    assert not kitchen.done()
    opener.gate.set()
    assert kitchen.result(10).list() == []


def test_another_profile_opens_while_one_is_opening(slow: tuple[RecordService, SlowOpen]) -> None:
    service, opener = slow
    kitchen = opening(service, opener)
    assert answers(lambda: service.store("default").list()) == []
    assert not kitchen.done()
    opener.gate.set()
    kitchen.result(10)


def test_two_callers_of_one_profile_open_its_store_once(slow: tuple[RecordService, SlowOpen]) -> None:
    service, opener = slow
    first = opening(service, opener)
    second: Future[SampleStore] = Future()
    threading.Thread(target=lambda: second.set_result(service.store("kitchen")), daemon=True).start()
    opener.gate.set()
    assert first.result(10) is second.result(10)
    assert opener.opened.count("kitchen") == 1
