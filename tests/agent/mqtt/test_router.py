from __future__ import annotations

import json
import logging
from concurrent.futures import Future
from typing import Any

import pytest

from agent.commands import Command, Reservation
from agent.errors import ServiceError
from agent.mqtt.router import Router, model_json
from agent.mqtt.schema import Response
from agent.record.requests import RecordRequest
from agent.requests import EmptyRequest
from agent.speak.requests import SpeakRequest
from agent.work import ByteBudget
from providers.base import ProviderUnavailableError


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


@pytest.mark.parametrize(("error", "code", "message"), [
    (KeyError("oops"), "internal_error", "KeyError: 'oops'"),  # a bug: contained, named
    (ProviderUnavailableError("Kokoro is not installed"), "provider_unavailable", "Kokoro is not installed"),
])
def test_a_handler_that_raises_at_once_is_answered(error: Exception, code: str, message: str) -> None:
    def raising(profile: str, request: Any) -> dict[str, Any]:
        raise error

    router, recorder = make_router(raising)
    router.dispatch("home", "speak", b'{"id": "c1", "text": "hi"}')
    [(_, _, response)] = recorder.responses
    assert (response.id, response.code, response.error, response.data) == ("c1", code, message, None)


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


def audio_router() -> tuple[Router, Recorder, list[bytes]]:
    """A router with one command that takes a recording (raw WAV or a JSON envelope)."""
    heard: list[bytes] = []
    recorder = Recorder()

    def take(profile: str, request: Any, out: Any) -> dict[str, Any]:
        heard.append(request.wav())
        return {"id": request.id, "bytes": len(request.wav())}

    room = Reservation(ByteBudget(400).hold(0), take)  # type: ignore[arg-type]  # the HTTP door's: unused here
    commands = {"record": Command(RecordRequest, take, reserve=lambda p, size: room),
                "ping": Command(EmptyRequest, lambda p, r, o: {"pong": True})}
    router = Router(commands, recorder, lambda profile: None, lambda name: True,  # type: ignore[arg-type,return-value]
                    max_request_bytes=100, max_audio_bytes=400)
    return router, recorder, heard


def test_a_recording_is_raw_audio_or_a_json_envelope_each_with_its_own_limit() -> None:
    router, recorder, heard = audio_router()
    router.dispatch("home", "record", b"RIFF" + b"\x00" * 396)  # exactly the audio limit, far over the request limit
    router.dispatch("home", "record", b'  {"id": "env1", "audio_b64": "UklGRg=="}')  # JSON, after blanks
    router.dispatch("home", "record", b"RIFF" + b"\x00" * 397)
    router.dispatch("home", "ping", b"{}" + b" " * 99)  # a plain request keeps the small limit
    assert heard == [b"RIFF" + b"\x00" * 396, b"RIFF"]
    codes = [(r.status, r.code, r.id) for _, _, r in recorder.responses]
    assert codes == [("ok", None, None), ("ok", None, "env1"), ("error", "payload_too_large", None),
                     ("error", "payload_too_large", None)]
    assert recorder.responses[2][2].error == "payload is 401 bytes; the limit is 400"
    assert recorder.responses[3][2].error == "payload is 101 bytes; the limit is 100"


def test_an_empty_payload_is_an_empty_request() -> None:
    router, recorder = make_router(lambda p, r: {})
    router.dispatch("home", "ping", b"  \n")
    [(_, _, response)] = recorder.responses
    assert response.status == "ok" and response.data == {"id": None, "pong": True}


def test_the_request_id_is_echoed_only_when_it_is_a_valid_one() -> None:
    router, recorder = make_router(lambda p, r: {})
    router.dispatch("home", "speak", b'{"id": "ok-1", "text": ""}')
    router.dispatch("home", "speak", b'{"id": "../../etc", "text": ""}')
    router.dispatch("home", "speak", b'{"id": 7, "text": ""}')
    assert [r.id for _, _, r in recorder.responses] == ["ok-1", None, None]


def test_a_refusals_data_reaches_the_response_and_the_log(caplog: pytest.LogCaptureFixture) -> None:
    router, recorder = make_router(lambda p, r: {})
    router.dispatch("home", "speak", b'{"id": "v1", "text": 5}')
    [(profile, command, response)] = recorder.responses
    assert (profile, command, response.code) == ("home", "speak", "invalid_payload")
    assert response.data == {"problems": [{"field": "text", "message": "Input should be a valid string"}]}
    assert "request home/speak (id=v1) refused: invalid_payload: " in caplog.text


def test_a_later_failure_keeps_its_code_data_and_the_request() -> None:
    futures: list[Future[dict[str, Any]]] = [Future(), Future(), Future()]
    router, recorder = make_router(lambda p, r: futures[int(r.id[-1])])
    for n in range(3):
        router.dispatch("home", "speak", json.dumps({"id": f"l{n}", "text": "hi"}).encode())
    futures[0].set_result({"said": "hi"})
    futures[1].set_exception(ServiceError("voice_not_found", "no such voice", {"voices": ["a"]}))
    provider_error = ProviderUnavailableError("the server is down")
    futures[2].set_exception(provider_error)
    ok, refused, unavailable = (r for _, _, r in recorder.responses)
    assert (ok.status, ok.id, ok.data) == ("ok", "l0", {"said": "hi"})
    assert (refused.status, refused.id, refused.code, refused.error, refused.data) == (
        "error", "l1", "voice_not_found", "no such voice", {"voices": ["a"]})
    assert (unavailable.id, unavailable.code, unavailable.error) == ("l2", "provider_unavailable", "the server is down")


def test_a_later_crash_is_an_internal_error_with_its_type(caplog: pytest.LogCaptureFixture) -> None:
    future: Future[dict[str, Any]] = Future()
    router, recorder = make_router(lambda p, r: future)
    router.dispatch("home", "speak", b'{"id": "k1", "text": "hi"}')
    future.set_exception(KeyError("oops"))
    [(profile, command, response)] = recorder.responses
    assert (profile, command, response.id, response.code, response.error) == (
        "home", "speak", "k1", "internal_error", "KeyError: 'oops'")
    assert "command speak for home failed: KeyError('oops')" in caplog.text


def test_a_result_without_an_id_is_answered_with_the_requests() -> None:
    router, recorder = make_router(lambda p, r: {"said": r.text})
    router.dispatch("home", "speak", b'{"id": "n1", "text": "hi"}')
    assert recorder.responses[0][2].id == "n1"
    router, recorder = make_router(lambda p, r: {"id": "own", "said": r.text})
    router.dispatch("home", "speak", b'{"id": "n2", "text": "hi"}')
    assert recorder.responses[0][2].id == "own"


def test_model_json_leaves_out_what_is_not_set() -> None:
    assert json.loads(model_json(Response(id=None, status="error", error="no", code="busy"))) == {
        "status": "error", "error": "no", "code": "busy"}


def test_each_answer_names_its_profile_and_command_and_the_handler_gets_the_profiles_output(
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, Any]] = []
    futures: list[Future[dict[str, Any]]] = [Future(), Future(), Future()]
    recorder = Recorder()

    def later(profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
        seen.append((profile, out))
        return futures[len(seen) - 1]

    def crash(profile: str, request: Any, out: Any) -> dict[str, Any]:
        raise RuntimeError("bug")

    commands = {"later": Command(EmptyRequest, later), "crash": Command(EmptyRequest, crash)}
    router = Router(commands, recorder, lambda profile: f"out:{profile}", lambda name: True,  # type: ignore[arg-type,return-value]
                    max_request_bytes=100, max_audio_bytes=100)
    for _ in futures:
        router.dispatch("den", "later", b'{"id": "d1"}')
    router.dispatch("den", "crash", b'{"id": "d2"}')
    futures[0].set_result({"fine": True})
    futures[1].set_exception(ServiceError("busy", "queue full"))
    futures[2].set_exception(ValueError("late bug"))
    assert seen == [("den", "out:den")] * 3
    assert [(p, c, r.id, r.code) for p, c, r in recorder.responses] == [
        ("den", "crash", "d2", "internal_error"), ("den", "later", "d1", None), ("den", "later", "d1", "busy"),
        ("den", "later", "d1", "internal_error")]
    assert "command crash for den failed" in caplog.text and "command later for den failed: ValueError('late bug')" in caplog.text
    assert "request den/later (id=d1) refused: busy: queue full" in caplog.text


def test_what_a_bad_payload_is_told() -> None:
    router, recorder = make_router(lambda p, r: {})
    router.dispatch("home", "speak", b"[1, 2]")
    router.dispatch("home", "speak", b'{"text": ')
    not_object, not_json = (r for _, _, r in recorder.responses)
    assert (not_object.code, not_object.error) == ("invalid_payload", "payload must be a JSON object")
    assert not_json.code == "invalid_json" and (not_json.error or "").startswith("the payload is ")



def test_a_profile_at_home_on_another_node_is_left_to_it(caplog: pytest.LogCaptureFixture) -> None:
    """Every node of a household reads ``<base>/+/request/+``: only the profile's home answers
    (and this node's debug log says why it was silent)."""
    caplog.set_level(logging.DEBUG, logger="agent.mqtt.router")
    recorder = Recorder()
    commands = {"ping": Command(EmptyRequest, lambda p, r, out: {"id": r.id, "pong": True})}
    router = Router(commands, recorder, lambda profile: None, lambda name: name == "home",  # type: ignore[arg-type,return-value]
                    max_request_bytes=1000, max_audio_bytes=5000, elsewhere=lambda name: name in ("office", "home"))
    router.dispatch("office", "ping", b'{"id": "o1"}')
    assert recorder.responses == []
    assert caplog.messages == ["request office/ping is for a profile at home on another node"]
    router.dispatch("attic", "ping", b'{"id": "a1"}')  # nobody's: said so
    router.dispatch("home", "ping", b'{"id": "h1"}')  # ours (even if another node claims it too)
    assert [(r.id, r.status, r.code) for _, _, r in recorder.responses] == [
        ("a1", "error", "unknown_profile"), ("h1", "ok", None)]
