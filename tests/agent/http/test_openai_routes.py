"""agent/http/openai.py's routes in process (aiohttp's test client, a core of stand-ins): the audio
as it is made, raw or as server-sent events; what a request sends on to ``speak``; the lists of
models and voices; and every refusal in OpenAI's shape with its status, type and code, before the
first sound (a proper answer) and after it (an ``error`` event, or a raw stream cut short)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.commands import Command
from agent.errors import ServiceError
from agent.http.api import Api
from agent.http.openai import ended, error_body, error_type, event
from agent.settings import AgentSettings
from agent.voices.picks import OPENAI_MODELS, OPENAI_VOICES
from providers import registry
from tests.agent.http.fake_core import Anything, fake_core, summary
from tests.mosquitto import free_port

WAIT = 10
SPEECH = "/v1/audio/speech"


class Speaker:
    """``speak``: the chunks it is given, from a thread of its own; ``fail`` after ``fail_after`` chunks
    (0: before any sound)."""

    def __init__(self, chunks: tuple[bytes, ...] = (b"one", b"two"), fail: BaseException | None = None,
                 fail_after: int = 0) -> None:
        self.chunks, self.fail, self.fail_after = chunks, fail, fail_after
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
        self.requests.append((profile, dict(request.model_extra or {})))
        answer: Future[dict[str, Any]] = Future()

        def run() -> None:
            for seq, chunk in enumerate(self.chunks):
                if self.fail is not None and seq == self.fail_after:
                    answer.set_exception(self.fail)
                    return
                out.chunk("r1", seq, chunk)
            answer.set_result({**summary(), "format": "mp3"})

        threading.Thread(target=run, daemon=True).start()
        return answer


def core_with(speaker: Speaker | None = None, table: dict[str, str] | None = None,
              installed: list[dict[str, str]] | None = None) -> Any:
    core = fake_core()
    core.layout = SimpleNamespace(exists=lambda profile: profile in ("default", "kitchen"), names=lambda: ["default"])
    core.calls = []

    def config(profile: str, request: Any, out: Any) -> dict[str, Any]:
        core.calls.append((profile, "config", dict(request.model_extra or {})))
        return {"config": {"openai": {"voices": table or {}}} if table is not None else {}}

    def voices(profile: str, request: Any, out: Any) -> dict[str, Any]:
        core.calls.append((profile, "voices", dict(request.model_extra or {})))
        return {"voices": installed or []}

    core.commands["config"] = Command(Anything, config)
    core.commands["voices"] = Command(Anything, voices)
    core.commands["speak"] = Command(Anything, speaker or Speaker())  # type: ignore[arg-type]
    return core


async def answer(client: TestClient, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    response = await client.request(method, path, **kwargs)
    return response.status, dict(response.headers), await response.read()


def ask(core: Any, method: str, path: str, settings: AgentSettings | None = None, extra: Any = None,
        **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async def go() -> tuple[int, dict[str, str], bytes]:
        app = Api(core, settings or AgentSettings()).app()
        if extra is not None:
            extra(app)
        async with TestClient(TestServer(app)) as client:
            return await answer(client, method, path, **kwargs)
    return asyncio.run(asyncio.wait_for(go(), WAIT))


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "tts-1", "voice": "alloy", "input": "Hello.", **fields}


def refusal(raw: bytes) -> dict[str, Any]:
    document = json.loads(raw)
    assert list(document) == ["error"], document
    return dict(document["error"])


# -- the audio ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("response_format", "kind"), [
    (None, "audio/mpeg"), ("wav", "audio/wav"), ("flac", "audio/flac"), ("opus", "audio/ogg"), ("pcm", "audio/pcm"),
])
def test_the_audio_is_sent_as_it_is_made_in_the_format_asked(response_format: str | None, kind: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    speaker = Speaker()
    fields = {} if response_format is None else {"response_format": response_format}
    with caplog.at_level(logging.INFO, "agent.http.openai"):
        status, headers, raw = ask(core_with(speaker), "POST", SPEECH, json=body(**fields))
    assert (status, raw) == (200, b"onetwo")
    assert (headers["Content-Type"], headers["Cache-Control"], headers["Transfer-Encoding"]) == (kind, "no-cache", "chunked")
    assert speaker.requests == [("default", {"text": "Hello.", "stream": True, "format": response_format or "mp3"})]
    assert "OpenAI speech r1: piper v, 0.1 s of mp3" in caplog.messages


def test_server_sent_events_carry_each_chunk_then_the_usage() -> None:
    status, headers, raw = ask(core_with(), "POST", SPEECH, json=body(stream_format="sse", input="Hi there."))
    assert status == 200 and headers["Content-Type"] == "text/event-stream" and headers["Cache-Control"] == "no-cache"
    assert raw == b"".join([
        b'event: speech.audio.delta\ndata: {"type":"speech.audio.delta","audio":"' + base64.b64encode(b"one") + b'"}\n\n',
        b'event: speech.audio.delta\ndata: {"type":"speech.audio.delta","audio":"' + base64.b64encode(b"two") + b'"}\n\n',
        b'event: speech.audio.done\ndata: {"type":"speech.audio.done","usage":{"input_tokens":9,"output_tokens":0,'
        b'"total_tokens":9}}\n\n'])


def test_the_voice_model_and_speed_reach_speak_in_the_voice_s_profile() -> None:
    speaker = Speaker()
    core = core_with(speaker, table={"nova": "en_US-lessac-medium"})
    status, _, _ = ask(core, "POST", SPEECH, json=body(voice="kitchen/nova", model="piper", speed=1.25))
    assert status == 200
    assert core.calls == [("kitchen", "config", {})]
    assert speaker.requests == [("kitchen", {"text": "Hello.", "stream": True, "format": "mp3", "provider": "piper",
                                             "voice": "en_US-lessac-medium", "speed": 1.25})]


# -- refusals before the first sound --------------------------------------------------------------

@pytest.mark.parametrize(("fail", "status", "error"), [
    (ServiceError("voice_not_found", "no voice x", {"param": "voice"}), 404,
     {"message": "no voice x", "type": "not_found_error", "param": "voice", "code": "voice_not_found"}),
    (ServiceError("busy", "too many"), 429,
     {"message": "too many", "type": "rate_limit_error", "param": None, "code": "busy"}),
    (ServiceError("provider_unavailable", "not loaded"), 503,
     {"message": "not loaded", "type": "server_error", "param": None, "code": "provider_unavailable"}),
    (KeyError("bug"), 500, {"message": "KeyError: 'bug'", "type": "server_error", "param": None, "code": "internal_error"}),
])
def test_a_refusal_before_any_sound_is_openai_s_error(fail: BaseException, status: int, error: dict[str, Any]) -> None:
    got, headers, raw = ask(core_with(Speaker(fail=fail)), "POST", SPEECH, json=body(stream_format="sse"))
    assert (got, refusal(raw)) == (status, error)
    assert headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(("fields", "status", "error"), [
    ({"input": ""}, 400, {"type": "invalid_request_error", "param": "input", "code": "invalid_payload"}),
    ({"response_format": "aac"}, 400, {"type": "invalid_request_error", "param": None, "code": "unsupported_format"}),
    ({"response_format": "ogg"}, 400, {"type": "invalid_request_error", "param": None, "code": "unsupported_format"}),
    ({"model": "whisper-1"}, 400, {"type": "invalid_request_error", "param": "model", "code": "unknown_model"}),
    ({"voice": "attic/alloy"}, 404, {"type": "not_found_error", "param": None, "code": "unknown_profile"}),
])
def test_a_request_outside_the_api_never_speaks(fields: dict[str, Any], status: int, error: dict[str, Any]) -> None:
    speaker = Speaker()
    got, _, raw = ask(core_with(speaker), "POST", SPEECH, json=body(**fields))
    shape = refusal(raw)
    assert got == status and {key: shape[key] for key in error} == error and shape["message"]
    assert speaker.requests == []


def test_a_field_outside_the_api_is_named_in_the_message() -> None:
    got, _, raw = ask(core_with(), "POST", SPEECH, json=body(input=""))
    assert (got, refusal(raw)) == (400, {"message": "input: String should have at least 1 character",
                                         "type": "invalid_request_error", "param": "input", "code": "invalid_payload"})


def test_a_body_that_is_no_json_object_is_refused_in_openai_s_shape() -> None:
    got, _, raw = ask(core_with(), "POST", SPEECH, data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert (got, refusal(raw)) == (400, {"message": "body must be a JSON object", "type": "invalid_request_error",
                                         "param": None, "code": "invalid_payload"})


# -- refusals after the first sound ---------------------------------------------------------------

def test_a_failure_after_the_first_sound_is_an_error_event_that_ends_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    speaker = Speaker(fail=ServiceError("provider_error", "the engine broke mid-way"), fail_after=1)
    with caplog.at_level(logging.WARNING, "agent.http.openai"):
        status, _, raw = ask(core_with(speaker), "POST", SPEECH, json=body(stream_format="sse"))
    assert status == 200
    events = [json.loads(block.split(b"data: ", 1)[1]) for block in raw.split(b"\n\n") if block]
    assert events == [
        {"type": "speech.audio.delta", "audio": base64.b64encode(b"one").decode()},
        {"type": "error", "error": {"message": "the engine broke mid-way", "type": "server_error", "param": None,
                                    "code": "provider_error"}}]
    assert raw.split(b"\n\n")[1].startswith(b"event: error\n")
    assert caplog.messages == ["OpenAI speech failed mid-stream: provider_error: the engine broke mid-way"]


def test_a_crash_after_the_first_sound_is_an_internal_error_event(caplog: pytest.LogCaptureFixture) -> None:
    speaker = Speaker(fail=KeyError("bug"), fail_after=1)
    with caplog.at_level(logging.WARNING, "agent.http.openai"):
        status, _, raw = ask(core_with(speaker), "POST", SPEECH, json=body(stream_format="sse"))
    crashed = [r for r in caplog.records if r.exc_info]
    assert [r.getMessage() for r in crashed] == ["OpenAI speech failed"]
    last = json.loads(raw.split(b"\n\n")[-2].split(b"data: ", 1)[1])
    assert (status, last["error"]["code"], last["error"]["message"]) == (200, "internal_error", "KeyError: 'bug'")


def test_a_raw_stream_that_fails_after_the_first_sound_is_cut_short() -> None:
    speaker = Speaker(fail=ServiceError("provider_error", "broke"), fail_after=1)

    async def go() -> bytes:
        async with TestClient(TestServer(Api(core_with(speaker), AgentSettings()).app())) as client:
            response = await client.post(SPEECH, json=body())
            assert response.status == 200
            return await response.read()

    with pytest.raises(aiohttp.ClientPayloadError):  # never a body that looks whole
        asyncio.run(asyncio.wait_for(go(), WAIT))


class Leaving:
    """``speak``: one chunk, then (once the test lets it) a second, which a client that left refuses."""

    def __init__(self) -> None:
        self.go_on = threading.Event()
        self.out: Any = None
        self.where = ""
        self.refused: ServiceError | None = None
        self.answer: Future[dict[str, Any]] = Future()

    def __call__(self, profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
        self.out, self.where = out, out.where("r1", True)

        def run() -> None:
            out.chunk("r1", 0, b"one")
            self.go_on.wait(WAIT)
            try:
                out.chunk("r1", 1, b"two")
            except ServiceError as exc:
                self.refused = exc
                self.answer.set_exception(exc)
                return
            self.answer.set_result(summary())

        threading.Thread(target=run, daemon=True).start()
        return self.answer


def test_a_client_that_leaves_stops_its_speech_at_the_next_chunk() -> None:
    speaker = Leaving()

    async def go() -> None:
        async with TestClient(TestServer(Api(core_with(speaker), AgentSettings()).app())) as client:  # type: ignore[arg-type]
            response = await client.post(SPEECH, json=body())
            assert await response.content.readany() == b"one"
            response.close()
            while not speaker.out.departure.gone:  # the door sees its connection closed (no leave() needed)
                await asyncio.sleep(0.01)
            speaker.go_on.set()
            while not speaker.answer.done():
                await asyncio.sleep(0.01)

    try:
        asyncio.run(asyncio.wait_for(go(), WAIT))
    finally:
        speaker.go_on.set()
    assert speaker.where == "openai"
    assert speaker.refused is not None and speaker.refused.code == "client_gone"
    assert str(speaker.refused) == "the OpenAI client has gone (127.0.0.1)"


class Deaf(Leaving):
    """A provider that hands its second chunk on without asking whether the client is still there:
    the door's write finds the connection closed."""

    def __call__(self, profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
        self.out = out

        def run() -> None:
            out.deliver(b"one")
            self.go_on.wait(WAIT)
            out.deliver(b"two")
            self.answer.set_result(summary())

        threading.Thread(target=run, daemon=True).start()
        return self.answer


def test_a_client_gone_when_its_audio_is_written_is_marked_gone(caplog: pytest.LogCaptureFixture) -> None:
    """Served as the agent serves it (aiohttp's test server cancels a handler whose client left;
    the agent's does not, so the handler goes on to write)."""
    speaker = Deaf()

    async def go() -> None:
        runner = web.AppRunner(Api(core_with(speaker), AgentSettings()).app(), access_log=None,  # type: ignore[arg-type]
                               handle_signals=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session:
                response = await session.post(f"http://127.0.0.1:{port}{SPEECH}", json=body())
                assert await response.content.readany() == b"one"
                response.close()
                while not speaker.out.departure.gone:
                    await asyncio.sleep(0.01)
                speaker.go_on.set()
                while "OpenAI client left mid-stream (127.0.0.1)" not in caplog.messages:
                    await asyncio.sleep(0.01)
        finally:
            await runner.cleanup()

    try:
        with caplog.at_level(logging.INFO, "agent.http.openai"):
            asyncio.run(asyncio.wait_for(go(), WAIT))
    finally:
        speaker.go_on.set()
    assert speaker.out.departure._left.is_set()  # left for good, not only while the socket says so


# -- models and voices ----------------------------------------------------------------------------

def test_models_lists_openai_s_names_then_the_providers() -> None:
    status, _, raw = ask(core_with(), "GET", "/v1/models")
    assert status == 200
    assert json.loads(raw) == {"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "voice-agent"} for name in [*OPENAI_MODELS, *registry.NAMES]]}


def test_voices_lists_openai_s_names_what_each_is_and_the_installed_voices() -> None:
    core = core_with(table={"nova": "piper:en_US-lessac-medium", "butler": "kokoro:bm_george"},
                     installed=[{"provider": "piper", "name": "en_US-joe-medium"}])
    status, _, raw = ask(core, "GET", "/v1/audio/voices")
    listed = json.loads(raw)
    entries = [{"id": name, "name": f"{name}: the profile’s own voice"} for name in OPENAI_VOICES]
    entries[OPENAI_VOICES.index("nova")]["name"] = "nova: piper:en_US-lessac-medium"
    entries += [{"id": "butler", "name": "butler: kokoro:bm_george"},
                {"id": "piper:en_US-joe-medium", "name": "piper:en_US-joe-medium"}]
    assert status == 200 and listed == {"object": "list", "voices": entries, "data": entries}
    assert core.calls == [("default", "config", {}), ("default", "voices", {"catalog": False})]


def test_voices_of_another_profile_carry_its_name() -> None:
    core = core_with(installed=[{"provider": "kokoro", "name": "af_heart"}])
    status, _, raw = ask(core, "GET", "/v1/audio/voices?profile=kitchen")
    voices = json.loads(raw)["voices"]
    assert status == 200 and voices[0] == {"id": "kitchen/alloy", "name": "alloy: the profile’s own voice"}
    assert voices[-1] == {"id": "kitchen/kokoro:af_heart", "name": "kitchen/kokoro:af_heart"}
    assert [call[0] for call in core.calls] == ["kitchen", "kitchen"]


# -- the error middleware -------------------------------------------------------------------------

def test_aiohttp_s_own_refusals_on_v1_are_openai_s_shape() -> None:
    status, _, raw = ask(core_with(), "GET", "/v1/nothing")
    assert (status, refusal(raw)) == (404, {"message": "Not Found", "type": "not_found_error", "param": None,
                                            "code": "not_found"})
    status, _, raw = ask(core_with(), "GET", SPEECH)
    assert (status, refusal(raw)) == (405, {"message": "Method Not Allowed", "type": "invalid_request_error",
                                            "param": None, "code": "method_not_allowed"})


def test_the_token_refusal_on_v1_is_an_authentication_error() -> None:
    settings = AgentSettings(http_token="a-token-of-at-least-24-characters")
    status, _, raw = ask(core_with(), "POST", SPEECH, settings=settings, json=body())
    error = refusal(raw)
    assert (status, error["type"], error["code"], error["param"]) == (401, "authentication_error", "unauthorized", None)
    assert error["message"].startswith("send 'Authorization: Bearer")
    status, _, raw = ask(core_with(), "POST", SPEECH, settings=settings, json=body(),
                         headers={"Authorization": "Bearer a-token-of-at-least-24-characters"})
    assert (status, raw) == (200, b"onetwo")


def test_other_paths_keep_the_agent_s_shape() -> None:
    status, _, raw = ask(core_with(), "POST", "/api/profiles/default/commands/nothing", json={})
    assert status == 404 and json.loads(raw)["code"] == "unknown_command" and isinstance(json.loads(raw)["error"], str)
    status, _, raw = ask(core_with(), "GET", "/v1")
    assert status == 404 and raw == b"404: Not Found"  # not under /v1/


def routes(app: web.Application) -> None:
    """Answers of every shape under /v1, to see which the middleware reshapes."""
    def route(path: str, make: Any) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await make(request) if asyncio.iscoroutinefunction(make) else make()
        app.router.add_get(path, handle)

    def redirect() -> web.Response:
        raise web.HTTPFound("/v1/models")

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"error": "x"}')
        return response

    route("/v1/t/text", lambda: web.Response(status=400, text="plain words"))
    route("/v1/t/list", lambda: web.json_response([1], status=400))
    route("/v1/t/dict", lambda: web.json_response({"error": {"message": "theirs"}}, status=400))
    route("/v1/t/bad-json", lambda: web.Response(status=400, body=b"{not", content_type="application/json"))
    route("/v1/t/ok-json", lambda: web.json_response({"error": "fine"}, status=200))
    route("/v1/t/redirect", redirect)
    route("/v1/t/streamed", streamed)
    route("/v1/t/no-code", lambda: web.json_response({"error": "why"}, status=418))
    route("/v1/t/headers", lambda: web.json_response(
        {"error": "slow down", "code": "busy", "data": {"param": "voice"}}, status=429,
        headers={"Retry-After": "5", "WWW-Authenticate": "Bearer", "X-Other": "1"}))
    route("/v1/t/conflict", lambda: (_ for _ in ()).throw(web.HTTPConflict()))


@pytest.mark.parametrize(("path", "status", "raw"), [
    ("/v1/t/text", 400, b"plain words"), ("/v1/t/list", 400, b"[1]"),
    ("/v1/t/dict", 400, b'{"error": {"message": "theirs"}}'), ("/v1/t/bad-json", 400, b"{not"),
    ("/v1/t/ok-json", 200, b'{"error": "fine"}'), ("/v1/t/streamed", 500, b'{"error": "x"}'),
])
def test_answers_that_are_no_agent_refusal_pass_as_they_are(path: str, status: int, raw: bytes) -> None:
    got, _, body_ = ask(core_with(), "GET", path, extra=routes, allow_redirects=False)
    assert (got, body_) == (status, raw)


def test_a_redirect_under_v1_is_no_error() -> None:
    status, headers, _ = ask(core_with(), "GET", "/v1/t/redirect", extra=routes, allow_redirects=False)
    assert (status, headers["Location"]) == (302, "/v1/models")


def test_an_agent_refusal_keeps_its_status_its_data_s_param_and_its_retry_headers() -> None:
    status, headers, raw = ask(core_with(), "GET", "/v1/t/headers", extra=routes)
    assert (status, refusal(raw)) == (429, {"message": "slow down", "type": "rate_limit_error", "param": "voice",
                                            "code": "busy"})
    assert (headers["Retry-After"], headers["WWW-Authenticate"]) == ("5", "Bearer") and "X-Other" not in headers
    status, _, raw = ask(core_with(), "GET", "/v1/t/no-code", extra=routes)
    assert (status, refusal(raw)) == (418, {"message": "why", "type": "invalid_request_error", "param": None,
                                            "code": "error"})
    status, _, raw = ask(core_with(), "GET", "/v1/t/conflict", extra=routes)
    assert (status, refusal(raw)) == (409, {"message": "Conflict", "type": "invalid_request_error", "param": None,
                                            "code": "conflict"})


# -- the pure helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"), (404, "not_found_error"),
    (409, "invalid_request_error"), (429, "rate_limit_error"), (499, "invalid_request_error"), (500, "server_error"),
    (502, "server_error"), (507, "server_error"),
])
def test_each_status_has_openai_s_type(status: int, kind: str) -> None:
    assert error_type(status) == kind


@pytest.mark.parametrize(("data", "param"), [
    (None, None), ({}, None), ({"problems": []}, None), ({"problems": ["input"]}, None), ({"problems": "input"}, None),
    ({"problems": [{"field": ""}]}, None), ({"problems": [{"message": "x"}]}, None),
    ({"problems": [{"field": "voice"}, {"field": "input"}]}, "voice"),
    ({"param": "model", "problems": [{"field": "voice"}]}, "model"), ({"param": "speed"}, "speed"),
])
def test_param_is_the_field_at_fault(data: dict[str, Any] | None, param: str | None) -> None:
    assert error_body("invalid_payload", "m", data)["param"] == param


def test_a_given_status_decides_the_type_over_the_code_s() -> None:
    assert error_body("busy", "m", status=500) == {"message": "m", "type": "server_error", "param": None, "code": "busy"}
    assert error_body("no_such_code", "m")["type"] == "server_error"  # an unknown code is a 500


def test_an_event_is_its_type_then_its_compact_json() -> None:
    assert event({"type": "x.y", "a": [1, 2]}) == b'event: x.y\ndata: {"type":"x.y","a":[1,2]}\n\n'


def test_ended_reads_an_error_nobody_waits_for_and_leaves_a_cancelled_answer_be() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        cancelled, failed, done = loop.create_future(), loop.create_future(), loop.create_future()
        cancelled.cancel()
        failed.set_exception(ServiceError("busy", "x"))
        done.set_result({})
        for future in (cancelled, failed, done):
            ended(future)

    asyncio.run(go())
