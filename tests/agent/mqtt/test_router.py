from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any

from agent.commands import Command
from agent.errors import ServiceError
from agent.mqtt.router import Router
from agent.mqtt.schema import Response
from agent.requests import EmptyRequest
from agent.speak.requests import SpeakRequest


class Recorder:
    def __init__(self) -> None:
        self.responses: list[tuple[str, str, Response]] = []

    def __call__(self, profile: str, command: str, response: Response) -> None:
        self.responses.append((profile, command, response))


def make_router(handler: Any) -> tuple[Router, Recorder]:
    recorder = Recorder()
    commands = {
        "speak": Command(SpeakRequest, lambda p, r, out: handler(p, r)),
        "ping": Command(EmptyRequest, lambda p, r, out: {"id": r.id, "pong": True}),
    }
    router = Router(commands, recorder, lambda profile: None, lambda name: name == "home",  # type: ignore[arg-type,return-value]
                    max_request_bytes=1000, max_audio_bytes=5000)
    return router, recorder


def test_plain_result_is_one_ok_response() -> None:
    router, recorder = make_router(lambda p, r: {"id": r.id, "said": r.text})
    router.dispatch("home", "speak", b'{"id": "a1", "text": "hi"}')
    [(profile, command, response)] = recorder.responses
    assert (profile, command, response.status, response.id) == ("home", "speak", "ok", "a1")
    assert response.data == {"id": "a1", "said": "hi"}


def test_future_result_answers_when_done() -> None:
    future: Future[dict[str, Any]] = Future()
    router, recorder = make_router(lambda p, r: future)
    router.dispatch("home", "speak", b'{"id": "f1", "text": "hi"}')
    assert recorder.responses == []
    future.set_exception(ServiceError("busy", "too much"))
    [(_, _, response)] = recorder.responses
    assert (response.status, response.code, response.error, response.id) == ("error", "busy", "too much", "f1")


def test_crashing_handler_is_contained() -> None:
    def boom(profile: str, request: Any) -> dict[str, Any]:
        raise KeyError("oops")

    router, recorder = make_router(boom)
    router.dispatch("home", "speak", b'{"id": "c1", "text": "hi"}')
    [(_, _, response)] = recorder.responses
    assert response.code == "internal_error" and "KeyError" in (response.error or "")


def test_each_refusal_has_its_code() -> None:
    router, recorder = make_router(lambda p, r: {})
    cases = [
        ("home", "dance", b"{}", "unknown_command"),
        ("home", "speak", b"x" * 1001, "payload_too_large"),
        ("home", "speak", b"{", "invalid_json"),
        ("home", "speak", b"3", "invalid_payload"),
        ("home", "speak", b'{"text": ""}', "invalid_payload"),
        ("away", "speak", b'{"text": "hi"}', "unknown_profile"),
        ("a/b", "speak", b'{"text": "hi"}', "invalid_profile"),
        ("..", "speak", b'{"text": "hi"}', "invalid_profile"),
    ]
    for profile, command, payload, _ in cases:
        router.dispatch(profile, command, payload)
    assert [r.code for _, _, r in recorder.responses] == [c[3] for c in cases]
    assert all(r.status == "error" and r.error for _, _, r in recorder.responses)


def test_response_json_has_no_nulls() -> None:
    response = Response(id="x", status="ok", data={"a": 1})
    assert json.loads(response.model_dump_json(exclude_none=True)) == {"id": "x", "status": "ok", "data": {"a": 1}}
