"""The speak service's part in issue 18: its worker is judged stuck by progress (audio made), not
by how long a request runs, a request over the audio cap is answered ``audio_too_long``, and one
whose client has left stops before its next chunk (``client_gone``), streamed or not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.speak import cache as cache_module
from agent.speak.departure import ClientAudio, Departure
from agent.speak.engines import ProviderPool
from agent.speak.progress import Heartbeats
from agent.speak.requests import SpeakRequest
from agent.speak.service import SpeakService
from providers.base import AudioChunk, ProviderContext, VoiceInfo
from providers.settings_base import ProviderSettings

WAIT = 10  # seconds a step may take before the test gives up (never reached when it works)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stepper:
    """Makes a chunk of 100 samples each time the test lets it."""

    name = "piper"

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.started = threading.Event()
        self.steps = threading.Semaphore(0)
        self.made = 0

    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        self.started.set()
        for _ in range(self.chunks):
            assert self.steps.acquire(timeout=WAIT)
            self.made += 1
            yield AudioChunk(b"\x01\x00" * 100, 100)

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        return []

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        return "v1"

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        pass

    def close(self) -> None:
        pass


class Out:
    def __init__(self) -> None:
        self.sent = threading.Semaphore(0)

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None:
        self.sent.release()

    def whole(self, request_id: str, wav: bytes) -> None:
        self.sent.release()

    def where(self, request_id: str, stream: bool) -> str:
        return "test"


def service(tmp_path: Path, engine: Stepper, max_audio_seconds: float = 300,
            clock: Clock | None = None, events: EventBus | None = None,
            release_after: float | None = None, cache: bool = False) -> SpeakService:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "voice.json").write_text(json.dumps({"cache": {"enabled": cache}}))
    (tmp_path / "profiles" / "default" / "etc").mkdir(parents=True)
    (tmp_path / "profiles" / "default" / "etc" / "voice.json").write_text("{}")
    layout = Layout(tmp_path)
    events = events or EventBus()
    return SpeakService(layout, ConfigStore(layout, events), ProviderPool(factory=lambda name: engine), events,
                        StateBoard(), 4, 5000, max_audio_seconds, heartbeats=Heartbeats(clock or Clock()),
                        release_after=release_after)


def test_a_request_making_audio_is_never_stuck_and_one_making_none_is(tmp_path: Path) -> None:
    clock = Clock()
    engine = Stepper(chunks=2)
    speak = service(tmp_path, engine, clock=clock)
    out = Out()
    answer = speak.submit("default", SpeakRequest(text="Hello there.", stream=True), out)
    assert engine.started.wait(WAIT)
    clock.now += 299.75
    assert speak.stalled(300) == []
    clock.now += 0.25
    assert speak.stalled(300) == ["default"]  # no audio for exactly the limit
    engine.steps.release()
    assert out.sent.acquire(timeout=WAIT)  # a chunk made: progress, whatever the request's age
    assert speak.stalled(300) == []
    clock.now += 300
    assert speak.stalled(300) == ["default"]
    engine.steps.release()
    assert answer.result(WAIT)["chunks"] == 2
    assert speak.stalled(0) == [] and speak.queue_depth("default") == 0
    speak.stop()


def test_the_answer_does_not_wait_for_the_cache_s_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache write ends with an fsync, tens of milliseconds on an SD card: the answer leaves first,
    the copy is written after it, before the next request, which is a hit."""
    engine = Stepper(chunks=1)
    engine.steps.release()
    speak = service(tmp_path, engine, cache=True)
    writing, written = threading.Event(), threading.Event()
    write = cache_module.atomic_write_bytes

    def slow_disk(path: Path, data: bytes) -> None:
        writing.set()
        assert written.wait(WAIT)
        write(path, data)

    monkeypatch.setattr(cache_module, "atomic_write_bytes", slow_disk)
    first = speak.submit("default", SpeakRequest(text="Hello there."), Out())
    assert first.result(WAIT / 2)["cached"] is False  # answered while its copy waits on the disk
    assert writing.wait(WAIT)
    again = speak.submit("default", SpeakRequest(text="Hello there."), Out())
    written.set()
    assert again.result(WAIT)["cached"] is True and engine.made == 1
    speak.stop()


def test_audio_over_the_cap_is_answered_audio_too_long(tmp_path: Path) -> None:
    engine = Stepper(chunks=3)
    speak = service(tmp_path, engine, max_audio_seconds=2)  # 1 s a chunk: the third goes over
    for _ in range(3):
        engine.steps.release()
    answer = speak.submit("default", SpeakRequest(text="Hello there."), Out())
    with pytest.raises(ServiceError) as refused:
        answer.result(WAIT)
    assert refused.value.code == "audio_too_long" and "more than 2 s of audio" in str(refused.value)
    speak.stop()


class Releasing(Stepper):
    """An engine that keeps buffers for its next sentence, and says when asked to hand them back."""

    def __init__(self) -> None:
        super().__init__(chunks=1)
        self.released = threading.Event()
        self.speaking_when_released = True

    def release_memory(self) -> None:
        self.speaking_when_released = self.made == 0
        self.released.set()


def test_the_engines_hand_back_their_buffers_once_speech_is_idle(tmp_path: Path) -> None:
    engine = Releasing()
    speak = service(tmp_path, engine, release_after=0.05)
    engine.steps.release()
    assert speak.submit("default", SpeakRequest(text="Hello there."), Out()).result(WAIT)["chunks"] == 1
    assert engine.released.wait(WAIT) and not engine.speaking_when_released
    speak.stop()


class Collected(ClientAudio):
    """An HTTP answer's out: the whole utterance at the end (the request is not streamed)."""

    def __init__(self, departure: Departure) -> None:
        super().__init__(departure)
        self.got: list[bytes] = []

    def deliver(self, wav: bytes) -> None:
        self.got.append(wav)

    def whole(self, request_id: str, wav: bytes) -> None:
        self.got.append(wav)

    def where(self, request_id: str, stream: bool) -> str:
        return "http"


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_whose_client_has_left_stops_before_its_next_chunk(tmp_path: Path, stream: bool) -> None:
    events = EventBus()
    seen: list[tuple[str, dict[str, object]]] = []
    events.listen(lambda profile, name, data, when: seen.append((name, data)))
    engine = Stepper(chunks=3)
    speak = service(tmp_path, engine, events=events)
    for _ in range(3):
        engine.steps.release()
    out = Collected(Departure("the HTTP client", "10.0.0.5", lambda: engine.made < 2))  # closed after the first
    answer = speak.submit("default", SpeakRequest(id="left", text="Hello there.", stream=stream), out)
    with pytest.raises(ServiceError) as stopped:
        answer.result(WAIT)
    assert stopped.value.code == "client_gone"
    assert engine.made == 2, "the third chunk was never made"
    assert len(out.got) == int(stream), "only the first chunk went anywhere"
    assert seen[-1][0] == "speak.failed" and seen[-1][1]["code"] == "client_gone" and seen[-1][1]["id"] == "left"
    assert "speak.finished" not in [name for name, _ in seen]
    speak.stop()
