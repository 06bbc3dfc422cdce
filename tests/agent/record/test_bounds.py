"""What recordings may hold while they wait: bytes, not only a count (40 recordings of 32 MiB
once took the agent to 1 GB while 16 of them waited)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.record.analysis import Analysis, AnalysisFailed
from agent.record.requests import RecordRequest
from agent.record.service import RecordService
from agent.record.vad import Utterance
from tests.agent.record.test_service import FakeAnalyser, scored

LIMIT = 100


@pytest.fixture()
def bounded(tmp_path: Path) -> Iterator[tuple[RecordService, FakeAnalyser]]:
    (tmp_path / "profiles" / "default" / "etc").mkdir(parents=True)
    layout = Layout(tmp_path)
    events = EventBus()
    analyser = FakeAnalyser()
    service = RecordService(layout, ConfigStore(layout, events), events, StateBoard(), 16, analyser, queue_bytes=LIMIT)
    yield service, analyser
    analyser.gate = None
    service.stop()


def submit(service: RecordService, size: int) -> Future[dict[str, Any]]:
    return service.submit("default", RecordRequest(audio=b"R" * size))


def held_up(analyser: FakeAnalyser, service: RecordService, size: int) -> Future[dict[str, Any]]:
    """A recording of ``size`` bytes that is being scored until the gate opens."""
    analyser.gate, analyser.entered = threading.Event(), threading.Event()
    future = submit(service, size)
    assert analyser.entered.wait(10)
    return future


def fill_to_the_limit(service: RecordService, analyser: FakeAnalyser) -> list[Future[dict[str, Any]]]:
    """One recording scored and one waiting, LIMIT bytes in all: exactly at the bound is taken."""
    analyser.results += [Analysis(2.0, [scored(80.0)], []) for _ in range(2)]
    return [held_up(analyser, service, 40), submit(service, LIMIT - 40)]


def test_recordings_up_to_the_byte_bound_wait_one_byte_more_is_busy(bounded: Any) -> None:
    service, analyser = bounded
    futures = fill_to_the_limit(service, analyser)
    with pytest.raises(ServiceError) as refused:
        submit(service, 1)
    assert (refused.value.code, str(refused.value)) == (
        "busy", f"{LIMIT} bytes of recordings are waiting to be scored (at most {LIMIT}); try again later")
    assert service.submit_utterances("default", [utterance(1)], "stream") is False  # streamed ones too
    assert analyser.gate is not None
    analyser.gate.set()
    assert all(f.result(10)["kept"] for f in futures)


def test_the_bytes_go_back_when_a_recording_is_scored(bounded: Any) -> None:
    service, analyser = bounded
    futures = fill_to_the_limit(service, analyser)
    assert analyser.gate is not None
    analyser.gate.set()
    assert all(f.result(10)["kept"] for f in futures)
    again = fill_to_the_limit(service, analyser)  # held nothing more: LIMIT bytes fit again
    analyser.gate.set()
    assert all(f.result(10)["kept"] for f in again)


@pytest.mark.parametrize("failure", [AnalysisFailed("analysis_failed", "the analysis process died"),
                                     RuntimeError("a bug")], ids=["analysis-failed", "unexpected"])
def test_the_bytes_go_back_when_a_recording_fails(bounded: Any, failure: Exception) -> None:
    service, analyser = bounded
    analyser.results.append(failure)
    first = held_up(analyser, service, LIMIT)
    assert analyser.gate is not None
    analyser.gate.set()
    with pytest.raises(Exception):
        first.result(10)
    futures = fill_to_the_limit(service, analyser)
    analyser.gate.set()
    assert all(f.result(10)["kept"] for f in futures)


def test_a_recording_refused_for_the_count_holds_no_bytes(tmp_path: Path) -> None:
    (tmp_path / "profiles" / "default" / "etc").mkdir(parents=True)
    layout, events, analyser = Layout(tmp_path), EventBus(), FakeAnalyser()
    service = RecordService(layout, ConfigStore(layout, events), events, StateBoard(), 1, analyser, queue_bytes=LIMIT)
    try:
        analyser.results += [Analysis(2.0, [scored(80.0)], []) for _ in range(3)]
        futures = [held_up(analyser, service, 10), submit(service, 10)]  # the queue of one is full
        with pytest.raises(ServiceError) as refused:
            submit(service, 10)
        assert str(refused.value) == "too many recordings are waiting to be scored; try again later"
        analyser.gate.set()  # type: ignore[union-attr]
        assert all(f.result(10)["kept"] for f in futures)
        assert submit(service, LIMIT).result(10)["kept"]  # alone: nothing of the refused one is still held
        analyser.results += [Analysis(2.0, [scored(80.0)], []) for _ in range(2)]
        futures = [held_up(analyser, service, 50), submit(service, LIMIT - 50)]
        analyser.gate.set()  # type: ignore[union-attr]
        assert all(f.result(10)["kept"] for f in futures)
    finally:
        analyser.gate = None
        service.stop()


def test_streamed_utterances_count_their_samples(bounded: Any) -> None:
    service, analyser = bounded
    analyser.results += [Analysis(2.0, [scored(80.0)], []), [scored(80.0)]]
    first = held_up(analyser, service, LIMIT - 40)
    assert service.submit_utterances("default", [utterance(5)], "stream") is True  # 5 float32 samples: 20 bytes
    assert service.submit_utterances("default", [utterance(5)], "stream") is True  # 40: at the bound
    assert service.submit_utterances("default", [utterance(1)], "stream") is False
    analyser.results.append([scored(80.0)])
    analyser.gate.set()  # type: ignore[union-attr]
    assert first.result(10)["kept"]


def test_stopping_gives_back_what_waited(bounded: Any) -> None:
    service, analyser = bounded
    analyser.results += [Analysis(2.0, [scored(80.0)], [])]
    first = held_up(analyser, service, 10)
    waiting = submit(service, LIMIT - 10)
    threading.Timer(0.2, analyser.gate.set).start()  # type: ignore[union-attr]
    service.stop()
    assert first.result(10)["kept"]
    with pytest.raises(ServiceError):
        waiting.result(10)
    assert service._bytes.held == 0


def utterance(samples: int) -> Utterance:
    return Utterance(np.zeros(samples, np.float32), np.zeros(1, bool), 0.0, 480)
