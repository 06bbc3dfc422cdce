"""The Wyoming handler's rules (agent/wyoming/handler.py) one by one: the exact refusal a client
reads for each malformed event, the log line a household reads, the describe answer, a stream
started again before it stopped, and plain synthesize heard again once a stream has stopped."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from wyoming.event import Event
from wyoming.info import Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from agent.commands import Command
from agent.requests import EmptyRequest
from agent.wyoming.handler import DoorContext, TtsHandler
from tests.agent.wyoming.test_handler import Core, converse, types


def errors(*events: Event) -> list[dict[str, object]]:
    written, kept = converse(Core(), *events)
    assert all(kept)
    return [e.data for e in written if e.type == "error"]


def test_each_malformed_event_is_refused_in_words(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "agent.wyoming.handler"):
        refused = errors(
            SynthesizeChunk(text="no start").event(),
            Event("synthesize", {"voice": {"name": "x"}}),
            Event("synthesize", {"text": "x", "voice": {"name": 5}}),
            SynthesizeStart().event(), Event("synthesize-chunk", {"text": 5}),
        )
    assert refused == [
        {"text": "synthesize-chunk: no synthesize-start came before it", "code": "invalid_payload"},
        {"text": "synthesize: malformed data (KeyError: 'text')", "code": "invalid_payload"},
        {"text": "synthesize: voice.name must be a string", "code": "invalid_payload"},
        {"text": "synthesize-chunk: text must be a string", "code": "invalid_payload"},
    ]
    assert caplog.records[0].getMessage() == (
        "Wyoming synthesize-chunk from 127.0.0.1:5000 refused: no synthesize-start came before it")


class Broken(Core):
    def door(self) -> DoorContext:
        door = super().door()

        def names() -> list[str]:
            raise RuntimeError("profiles unreadable")

        return DoorContext(door.commands, names, door.profile_exists, door.max_text_chars)


def test_a_bug_is_answered_as_internal_error_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "agent.wyoming.handler"):
        written, kept = converse(Broken(), Event("describe"))
    assert [e.data for e in written] == [{"text": "RuntimeError: profiles unreadable", "code": "internal_error"}]
    assert kept == [True]
    assert [r.getMessage() for r in caplog.records] == ["Wyoming describe from 127.0.0.1:5000 failed"]


class Voiced(Core):
    def door(self) -> DoorContext:
        door = super().door()
        listing = Command(EmptyRequest, lambda p, r, out: {"voices": [{"provider": "piper", "name": "amy"}]})
        return DoorContext({**door.commands, "voices": listing}, door.profile_names, door.profile_exists, 100)


def test_describe_lists_the_profiles_voices() -> None:
    written, _ = converse(Voiced(), Event("describe"))
    (info,) = written
    assert Info.is_type(info.type)
    assert [v.name for v in Info.from_event(info).tts[0].voices] == ["default/", "piper:amy"]


def test_an_unknown_event_is_ignored_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "agent.wyoming.handler"):
        written, kept = converse(Core(), Event("run-satellite"))
    assert written == [] and kept == [True]
    assert "Wyoming event run-satellite from 127.0.0.1:5000 ignored" in [r.getMessage() for r in caplog.records]


def test_a_stream_started_again_speaks_the_first_and_takes_the_new_voice() -> None:
    core = Core()
    written, _ = converse(
        core,
        SynthesizeStart().event(),
        SynthesizeChunk(text="One").event(),
        SynthesizeStart(voice=SynthesizeVoice(name="kitchen/kokoro:af_heart")).event(),
        SynthesizeChunk(text="Two.").event(),
        SynthesizeStop().event(),
        Synthesize(text="After.").event(),  # the stream has stopped: a plain request again
    )
    assert [(p, r.provider, r.voice, r.text) for p, r in core.requests] == [
        ("default", None, None, "One"), ("kitchen", "kokoro", "af_heart", "Two."), ("default", None, None, "After.")]
    kinds = types(written)
    assert kinds[0] == "audio-start" and kinds.count("synthesize-stopped") == 2


class Where(Core):
    def __init__(self) -> None:
        super().__init__()
        self.where: list[str] = []

    def speak(self, profile: str, request: Any, out: Any) -> Any:
        self.where.append(out.where(request.id, True))
        return super().speak(profile, request, out)


def test_the_audio_goes_to_the_connections_peer() -> None:
    core = Where()
    converse(core, Synthesize(text="Hi.").event())
    assert core.where == ["wyoming://127.0.0.1:5000"]
