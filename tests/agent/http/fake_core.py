"""A core with a command table of stand-ins, for the HTTP door in-process: ``speak`` says a short
silence in as many sentences as it is asked (``sentences``, ``pause`` s apart) and keeps each
request's ``Speech`` in ``core.speeches``; ``record`` and ``samples.list`` answer what they got."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.commands import Command
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.http.api import Api
from agent.settings import AgentSettings
from providers.common.audio import wav_bytes

SILENCE = wav_bytes(b"\0\0" * 2205, 22050)


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


class Recording(BaseModel):
    audio: bytes | None = None
    audio_b64: str | None = None


def summary() -> dict[str, Any]:
    return {"id": "r1", "provider": "piper", "voice": "v", "cached": False, "fallback": False,
            "audio_seconds": 0.1, "latency_ms": 1}


class Speech:
    """One speak request: its answer and how many sentences its out took."""

    def __init__(self) -> None:
        self.answer: Future[dict[str, Any]] = Future()
        self.sent = 0


def speak(profile: str, request: Any, out: Any, speeches: list[Speech] | None = None) -> Future[dict[str, Any]]:
    """Sentences from a thread of its own, as the speak worker sends them: what the out raises
    (``client_gone``) fails the request there, as in the speak service."""
    speech = Speech()
    if speeches is not None:
        speeches.append(speech)
    extra = request.model_extra or {}

    def run() -> None:
        for seq in range(int(extra.get("sentences", 1))):
            try:
                out.chunk("r1", seq, SILENCE)
            except RuntimeError:  # the test's loop has closed: nobody to speak to
                return
            except ServiceError as exc:
                speech.answer.set_exception(exc)
                return
            speech.sent += 1
            time.sleep(float(extra.get("pause", 0)))
        speech.answer.set_result({**summary(), "chunks": int(extra.get("sentences", 1))})

    threading.Thread(target=run, daemon=True).start()
    return speech.answer


def fake_core() -> Any:
    speeches: list[Speech] = []
    return SimpleNamespace(
        speeches=speeches,
        events=EventBus(), state=StateBoard(),
        layout=SimpleNamespace(exists=lambda profile: profile == "default", names=lambda: ["default"]),
        problems=lambda: [], availability=lambda problems: "unhealthy" if problems else "online", engines=SimpleNamespace(loaded=lambda: []),
        commands={
            "speak": Command(Anything, lambda p, r, out: speak(p, r, out, speeches)),
            "record": Command(Recording, lambda p, r, out: {"audio": len(r.audio or b""),
                                                            "b64": len(r.audio_b64 or "")}, audio_in=True),
            "samples.list": Command(Anything, lambda p, r, out: {"got": sorted(r.model_extra or {})}),
        },
    )


def api_app(core: Any = None, **settings: Any) -> Any:
    return Api(core or fake_core(), AgentSettings(**settings)).app()
