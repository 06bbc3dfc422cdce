"""A core with a command table of stand-ins, for the HTTP door in-process: ``speak`` says a short
silence in as many sentences as it is asked (``sentences``, ``pause`` s apart) and keeps each
request's ``Speech`` in ``core.speeches``; ``record`` and ``samples.list`` answer what they got;
``record`` makes room for its body in ``core.budget`` (``RECORD_BUDGET`` bytes) and gives it back
when it answers, ``enroll`` is switched off (``forbidden``) before a body is read."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.blobs.index import BlobIndex
from agent.commands import Command, Reservation
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.http.api import Api
from agent.nodes.service import NodeService, NodeSources
from agent.nodes.state import Queues
from agent.settings import AgentSettings
from agent.work import ByteBudget
from providers.common.audio import wav_bytes

SILENCE = wav_bytes(b"\0\0" * 2205, 22050)
RECORD_BUDGET = 2048


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


class Recording(BaseModel):
    audio: bytes | None = None
    audio_b64: str | None = None


def summary() -> dict[str, Any]:
    return {"id": "r1", "provider": "piper", "voice": "v", "cached": False, "fallback": False,
            "audio_seconds": 0.1, "latency_ms": 1, "format": "wav", "content_type": "audio/wav"}


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


def recorded(profile: str, request: Any, out: Any) -> dict[str, Any]:
    return {"audio": len(request.audio or b""), "b64": len(request.audio_b64 or "")}


def record_room(budget: ByteBudget) -> Any:
    """As the record service's: room for the body or busy; the answer takes the bytes over and
    gives them back."""
    def reserve(profile: str, size: int) -> Reservation:
        hold = budget.hold(size)
        if hold is None:
            raise ServiceError("busy", "no room")

        def run(p: str, request: Any, out: Any) -> dict[str, Any]:
            held = hold.pass_on()
            assert held is not None, "the door released the bytes before the job took them over"
            try:
                return recorded(p, request, out)
            finally:
                held.release()

        return Reservation(hold, run)
    return reserve


def forbidden(profile: str, size: int) -> Reservation:
    raise ServiceError("forbidden", "speaker.enroll is switched off for this profile")


def fake_core(kept: list[Any] | None = None, offers: Any = None) -> Any:
    """``kept``: the folders whose files the blob route serves (none by default); ``offers``: a
    worker's offered files (agent/blobs/offers.py), served first."""
    speeches: list[Speech] = []
    budget = ByteBudget(RECORD_BUDGET)
    index = BlobIndex(lambda: list(kept or []))
    return SimpleNamespace(
        find_blob=lambda sha: (offers.find(sha) if offers is not None else None) or index.find(sha),
        speeches=speeches, budget=budget,
        events=EventBus(), state=StateBoard(),
        layout=SimpleNamespace(exists=lambda profile: profile == "default", names=lambda: ["default"]),
        problems=lambda: [], availability=lambda problems: "unhealthy" if problems else "online", engines=SimpleNamespace(loaded=lambda: []),
        nodes=NodeService("here", "0", False, "", NodeSources(lambda: [], lambda: [], lambda: {}, Queues)),
        blobs=index,
        memory=lambda: {"agent_mb": 210, "available_mb": 3000, "total_mb": 8000, "limit_mb": 4096, "limit_from": "memory.max"},
        commands={
            "speak": Command(Anything, lambda p, r, out: speak(p, r, out, speeches)),
            "record": Command(Recording, recorded, reserve=record_room(budget)),
            "speaker.enroll": Command(Recording, recorded, reserve=forbidden),
            "samples.list": Command(Anything, lambda p, r, out: {"got": sorted(r.model_extra or {})}),
        },
    )


def api_app(core: Any = None, **settings: Any) -> Any:
    return Api(core or fake_core(), AgentSettings(**settings)).app()
