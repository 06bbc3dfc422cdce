"""One Wyoming connection against a stand-in command table: what the door answers when the core
refuses, fails half-way or the client sends what the protocol does not expect."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

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


class FakeWriter:
    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5000)


class Core:
    """Speaks ``chunks`` sentences on a thread of its own, then answers or fails."""

    def __init__(self, chunks: int = 1, fail: BaseException | None = None, refuse: ServiceError | None = None,
                 wav: bytes = SENTENCE) -> None:
        self.chunks, self.fail, self.refuse, self.wav = chunks, fail, refuse, wav
        self.requests: list[tuple[str, SpeakRequest]] = []

    def speak(self, profile: str, request: SpeakRequest, out: AudioOut) -> Future[dict[str, Any]]:
        if self.refuse is not None:
            raise self.refuse
        self.requests.append((profile, request))
        future: Future[dict[str, Any]] = Future()

        def work() -> None:
            for seq in range(self.chunks):
                out.chunk(request.id or "", seq, self.wav)
            if self.fail is not None:
                future.set_exception(self.fail)
            else:
                future.set_result({"id": request.id, "sample_rate": 22050})

        threading.Thread(target=work).start()
        return future

    def door(self) -> DoorContext:
        commands = {
            "speak": Command(SpeakRequest, self.speak),
            "voices": Command(EmptyRequest, lambda p, r, out: {"voices": []}),
        }
        return DoorContext(commands, lambda: ["default"], lambda name: name in ("default", "kitchen"), 100)


def converse(core: Core, *events: Event) -> tuple[list[Event], list[bool]]:
    """Feed ``events`` to one handler; what it wrote, and whether it kept the connection each time."""
    written: list[Event] = []

    class Recording(TtsHandler):
        async def write_event(self, event: Event) -> None:
            written.append(event)

    async def main() -> list[bool]:
        handler = Recording(core.door(), asyncio.StreamReader(), FakeWriter())  # type: ignore[arg-type]
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
