"""One Wyoming connection against a stand-in command table: what the door answers when the core
refuses, fails half-way or the client sends what the protocol does not expect."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

import pytest
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from agent.commands import Command
from agent.errors import ServiceError
from agent.requests import EmptyRequest
from agent.speak.requests import SpeakRequest
from agent.speak.service import AudioOut
from agent.wyoming.handler import DoorContext, TtsHandler
from providers.base import ProviderError
from providers.common.audio import wav_bytes

SENTENCE = wav_bytes(b"\x01\x00" * 3000, 22050)  # 3000 samples: three chunks


class Core:
    """Speaks ``chunks`` sentences on a thread of its own, then answers or fails."""

    def __init__(self, chunks: int = 1, fail: BaseException | None = None, refuse: ServiceError | None = None,
                 wav: bytes = SENTENCE, hold: threading.Event | None = None) -> None:
        """``hold``: after its first sentence the worker waits for it (a client can leave meanwhile)."""
        self.chunks, self.fail, self.refuse, self.wav, self.hold = chunks, fail, refuse, wav, hold
        self.requests: list[tuple[str, SpeakRequest]] = []
        self.produced = 0  # sentences the worker handed over
        self.futures: list[Future[dict[str, Any]]] = []
        self.workers: list[threading.Thread] = []

    def speak(self, profile: str, request: SpeakRequest, out: AudioOut) -> Future[dict[str, Any]]:
        if self.refuse is not None:
            raise self.refuse
        self.requests.append((profile, request))
        future: Future[dict[str, Any]] = Future()

        def work() -> None:  # as the speak service's worker: what its AudioOut raises fails the request
            try:
                for seq in range(self.chunks):
                    if seq and self.hold is not None:
                        self.hold.wait(30)
                    out.chunk(request.id or "", seq, self.wav)
                    self.produced += 1
                if self.hold is not None:
                    self.hold.wait(30)
                if self.fail is not None:
                    raise self.fail
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result({"id": request.id, "sample_rate": 22050})

        self.futures.append(future)
        self.workers.append(threading.Thread(target=work))
        self.workers[-1].start()
        return future

    def let_finish(self) -> None:
        if self.hold is not None:
            self.hold.set()
        for worker in self.workers:
            worker.join(30)

    def door(self) -> DoorContext:
        commands = {
            "speak": Command(SpeakRequest, self.speak),
            "voices": Command(EmptyRequest, lambda p, r, out: {"voices": []}),
        }
        return DoorContext(commands, lambda: ["default"], lambda name: name in ("default", "kitchen"), 100)


def converse(core: Core, *events: Event) -> tuple[list[Event], list[bool]]:
    """Feed ``events`` to one handler; what it wrote, and whether it kept the connection each time."""
    written: list[Event] = []

    async def write(event: Event) -> None:
        written.append(event)

    async def main() -> list[bool]:
        handler = TtsHandler(core.door(), write, "127.0.0.1:5000")
        return [await handler.handle_event(event) for event in events]

    return written, asyncio.run(main())


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def test_audio_is_framed_and_chunked() -> None:
    written, kept = converse(Core(chunks=2), Synthesize(text="Two sentences. Here.").event())
    assert types(written) == ["audio-start", *["audio-chunk"] * 6, "audio-stop"] and kept == [True]
    assert written[0].data["rate"] == 22050


def test_a_failure_after_audio_is_an_error_and_the_audio_is_closed() -> None:
    written, _ = converse(Core(chunks=1, fail=ProviderError("engine broke")), Synthesize(text="Hi.").event())
    assert types(written) == ["audio-start", "audio-chunk", "audio-chunk", "audio-chunk", "error", "audio-stop"]
    assert written[4].data == {"text": "engine broke", "code": "provider_error"}


def test_a_refusal_is_its_code_and_a_crash_is_internal_error() -> None:
    busy, kept = converse(Core(refuse=ServiceError("busy", "too many")), Synthesize(text="Hi.").event())
    assert [e.data for e in busy] == [{"text": "too many", "code": "busy"}] and kept == [True]
    failed, kept = converse(Core(fail=KeyError("bug")), Synthesize(text="Hi.").event())
    assert failed[-2].data["code"] == "internal_error" and kept == [True]
    crashed, kept = converse(Core(wav=b"not a WAV"), Synthesize(text="Hi.").event(), Synthesize(text="Again.").event())
    assert [e.data.get("code") for e in crashed] == ["internal_error", "internal_error"] and kept == [True, True]


def test_picks_map_onto_profile_provider_and_voice() -> None:
    core = Core()
    converse(
        core,
        Synthesize(text="a.").event(),
        Event("synthesize", {"text": "b.", "voice": {"name": "kitchen/kokoro:af_heart"}}),
        Event("synthesize", {"text": "c.", "voice": {"name": "en_US-joe-medium"}}),
    )
    picked = [(p, r.provider, r.voice, r.stream) for p, r in core.requests]
    assert picked == [
        ("default", None, None, True),
        ("kitchen", "kokoro", "af_heart", True),
        ("default", None, "en_US-joe-medium", True),
    ]


def test_the_speaker_home_assistant_picked_goes_with_the_request() -> None:
    core = Core()
    written, _ = converse(
        core,
        Event("synthesize", {"text": "a.", "voice": {"name": "piper:en_GB-vctk-medium", "speaker": "p226"}}),
        Event("synthesize-start", {"voice": {"name": "en_US-arctic-medium", "speaker": "awb"}}),
        Event("synthesize-chunk", {"text": "b. "}), Event("synthesize-stop"),
        Event("synthesize", {"text": "c.", "voice": {"name": "x", "speaker": ""}}),  # empty: no speaker
        Event("synthesize", {"text": "d.", "voice": {"name": "x", "speaker": 3}}),
    )
    picked = [(r.provider, r.voice, r.speaker) for _, r in core.requests]
    assert picked == [("piper", "en_GB-vctk-medium", "p226"), (None, "en_US-arctic-medium", "awb"), (None, "x", None)]
    assert written[-1].data == {"text": "synthesize: voice.speaker must be a string", "code": "invalid_payload"}


def test_events_out_of_place_are_answered() -> None:
    written, kept = converse(
        Core(),
        SynthesizeChunk(text="no start").event(),
        SynthesizeStop().event(),
        Event("synthesize", {"voice": {"name": "x"}}),  # no text
        Event("synthesize", {"text": "x", "voice": {"name": 5}}),
    )
    assert types(written) == ["error", "synthesize-stopped", "error", "error"] and all(kept)
    assert {e.data.get("code") for e in written} == {"invalid_payload", None}


def test_a_stream_speaks_each_sentence_once_in_order() -> None:
    core = Core()
    written, _ = converse(
        core,
        SynthesizeStart().event(),
        SynthesizeChunk(text="First one. Sec").event(),
        SynthesizeChunk(text="ond one! Last").event(),
        Synthesize(text="First one. Second one! Last").event(),  # the compatibility copy: not spoken
        SynthesizeStop().event(),
    )
    assert [r.text for _, r in core.requests] == ["First one.", "Second one!", "Last"]
    assert types(written).count("audio-start") == 3 and types(written)[-1] == "synthesize-stopped"


def test_a_client_gone_mid_synthesize_stops_the_worker_at_its_next_sentence(caplog: pytest.LogCaptureFixture) -> None:
    core = Core(chunks=5, hold=threading.Event())
    written: list[Event] = []

    async def write(event: Event) -> None:
        if event.type == "audio-chunk":
            raise ConnectionResetError("the client has gone")
        written.append(event)

    async def main() -> bool:
        handler = TtsHandler(core.door(), write, "127.0.0.1:5000")
        kept = await handler.handle_event(Synthesize(text="One. Two. Three. Four. Five.").event())
        await handler.disconnect()
        return kept

    with caplog.at_level(logging.INFO, "agent.wyoming"):
        kept = asyncio.run(main())
    core.let_finish()
    assert kept is False and types(written) == ["audio-start"]
    assert core.produced == 1, "the worker's next sentence was refused"
    error = core.futures[0].exception()
    assert isinstance(error, ServiceError) and error.code == "client_gone"
    assert [r.getMessage() for r in caplog.records] == [
        "Wyoming client 127.0.0.1:5000 has gone: its speech stops (0 queued sentence(s) dropped)"
    ]


def test_a_stream_drops_its_queued_sentences_when_the_connection_ends(caplog: pytest.LogCaptureFixture) -> None:
    core = Core(chunks=2, hold=threading.Event())
    written: list[Event] = []

    async def write(event: Event) -> None:
        written.append(event)

    async def main() -> list[Event]:
        handler = TtsHandler(core.door(), write, "127.0.0.1:5000")
        await handler.handle_event(SynthesizeStart().event())
        await handler.handle_event(SynthesizeChunk(text="One here. Two here. Three here. Four here. Fi").event())
        for _ in range(3000):  # until the first sentence is being spoken (the worker then waits)
            if "audio-chunk" in types(written):
                break
            await asyncio.sleep(0.01)
        await handler.disconnect()
        before = list(written)
        await asyncio.to_thread(core.let_finish)
        for _ in range(10):
            await asyncio.sleep(0.01)
        return before

    with caplog.at_level(logging.INFO, "agent.wyoming"):
        before = asyncio.run(main())
    assert [r.text for _, r in core.requests] == ["One here."]
    assert written == before, "nothing more is written for a connection that has ended"
    error = core.futures[0].exception()
    assert isinstance(error, ServiceError) and error.code == "client_gone" and core.produced == 1
    assert [r.getMessage() for r in caplog.records] == [
        "Wyoming client 127.0.0.1:5000 has gone: its speech stops (3 queued sentence(s) dropped)"
    ]


def test_a_connection_that_ends_quietly_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async def write(event: Event) -> None:
            pass

        handler = TtsHandler(Core().door(), write, "127.0.0.1:5000")
        await handler.handle_event(Synthesize(text="Said in full.").event())
        await handler.disconnect()

    with caplog.at_level(logging.INFO, "agent.wyoming"):
        asyncio.run(main())
    assert caplog.records == []
