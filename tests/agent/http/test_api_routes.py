"""The HTTP door's other routes in-process (agent/http/api.py), each rule on its own: what
``/api/voices`` passes on of its query, every field of ``/api/health``, the events stream's
default profile and its end at shutdown, a command's answer and refusals, a sample's WAV and the
report's picture (types, ``no-cache``, the profile of the path), a voice upload (its limit in
MiB, the slot given back on every path, the upload deleted), each error the middleware maps, and
the token and port the door's guard is given."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent import __version__
from agent.commands import Command
from agent.errors import ServiceError
from agent.http.api import Api
from agent.settings import AgentSettings
from agent.voices.imports import ImportSlot, UploadRoom
from providers.base import ProviderError
from tests.agent.http.fake_core import SILENCE, Anything, fake_core

T = TypeVar("T")
WAIT = 30  # seconds a step may take (never reached when it works)
TOKEN = "a-kitchen-token-of-24-chars-or-more"


def core_of(tmp_path: Path) -> Any:
    """The fake core with a second profile, ``kitchen``, and what the routes below ask of it."""
    core = fake_core()
    core.layout.exists = lambda profile: profile in ("default", "kitchen")
    core.layout.names = lambda: ["default", "kitchen"]
    core.layout.reports_dir = lambda profile: tmp_path / "reports" / profile
    core.layout.uploads_dir = tmp_path / "uploads"
    core.asked = []  # (command, profile, fields) of the commands below
    core.engines.loaded = lambda: ["piper"]

    def asking(name: str, answer: Any) -> Command:
        def run(profile: str, request: Any, out: Any) -> Any:
            core.asked.append((name, profile, dict(request.model_extra or {})))
            if isinstance(answer, BaseException):
                raise answer
            return answer(profile, request) if callable(answer) else answer
        return Command(Anything, run)  # type: ignore[arg-type]

    core.asking = asking
    core.commands["voices"] = asking("voices", {"voices": [{"name": "en_US-lessac-medium"}]})
    return core


def with_client(core: Any, conversation: Callable[[TestClient], Awaitable[T]], **settings: Any) -> T:
    async def go() -> T:
        async with TestClient(TestServer(Api(core, AgentSettings(**settings)).app())) as client:
            return await conversation(client)
    return asyncio.run(asyncio.wait_for(go(), WAIT))


def get(core: Any, path: str, **settings: Any) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body (JSON when it is JSON) of ``GET path``."""
    async def conversation(client: TestClient) -> tuple[int, dict[str, str], Any]:
        response = await client.get(path)
        body = await response.read()
        is_json = response.content_type == "application/json"
        return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(body) if is_json else body
    return with_client(core, conversation, **settings)


def post(core: Any, path: str, body: bytes, content_type: str = "application/json",
         **settings: Any) -> tuple[int, Any]:
    async def conversation(client: TestClient) -> tuple[int, Any]:
        response = await client.post(path, data=body, headers={"Content-Type": content_type})
        text = await response.read()
        return response.status, json.loads(text) if response.content_type == "application/json" else text
    return with_client(core, conversation, **settings)


# -- GET /api/voices --------------------------------------------------------------------------------
def test_voices_answers_the_commands_result_for_the_default_profile(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    status, _, body = get(core, "/api/voices")
    assert (status, body) == (200, {"voices": [{"name": "en_US-lessac-medium"}]})
    assert core.asked == [("voices", "default", {})]


def test_voices_passes_on_provider_language_and_catalog_and_nothing_else(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    status, _, _ = get(core, "/api/voices?profile=kitchen&provider=kokoro&language=en&catalog=false&other=1")
    assert status == 200
    assert core.asked == [("voices", "kitchen", {"provider": "kokoro", "language": "en", "catalog": "false"})]
    status, _, body = get(core, "/api/voices?profile=nobody")
    assert (status, body["code"]) == (404, "unknown_profile")


# -- GET /api/health --------------------------------------------------------------------------------
def test_health_has_every_field(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    core.state.replace("default", {"readiness": {"speak": "ready"}, "provider": "piper"})
    core.state.replace("kitchen", {"provider": "kokoro"})  # no readiness yet
    core.state.replace("gpu", {"available": False})
    status, _, body = get(core, "/api/health")
    assert status == 200
    assert body == {"status": "online", "version": __version__, "problems": [], "profiles": ["default", "kitchen"],
                    "providers_loaded": ["piper"], "readiness": {"default": {"speak": "ready"}, "kitchen": {}},
                    "gpu": {"available": False}, "memory": core.memory()}


def test_health_says_its_problems_and_the_status_they_make(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    core.problems = lambda: [{"code": "mqtt_down"}]
    _, _, body = get(core, "/api/health")
    assert (body["status"], body["problems"]) == ("unhealthy", [{"code": "mqtt_down"}])


# -- GET /api/events --------------------------------------------------------------------------------
def test_the_events_stream_is_the_default_profiles_and_ends_at_shutdown(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    core.state.replace("default", {"provider": "piper"})
    core.state.replace("kitchen", {"provider": "kokoro"})

    async def go() -> tuple[list[bytes], bytes]:
        async with TestClient(TestServer(Api(core, AgentSettings()).app())) as client:
            plain = await client.get("/api/events")
            first = [await plain.content.readline()]
            kitchen = await client.get("/api/events?profile=kitchen")
            first.append(await kitchen.content.readline())
            await client.app.shutdown()  # what the server does as it stops: every stream ends
            rest = b""
            while line := await plain.content.readline():
                rest += line
            return first, rest

    first, rest = asyncio.run(asyncio.wait_for(go(), WAIT))
    assert [json.loads(line.removeprefix(b"data: "))["key"] for line in first] == ["default", "kitchen"]
    assert b"kitchen" not in rest


# -- POST /api/profiles/<profile>/commands/<command> ------------------------------------------------
def test_a_command_answers_its_data_for_the_profile_of_the_path(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    core.commands["samples.list"] = core.asking("samples.list", lambda p, r: {"profile": p})
    assert post(core, "/api/profiles/kitchen/commands/samples.list", b'{"limit": 5}') == (200, {"data": {"profile": "kitchen"}})
    assert post(core, "/api/profiles/default/commands/samples.list", b"") == (200, {"data": {"profile": "default"}})
    assert core.asked == [("samples.list", "kitchen", {"limit": 5}), ("samples.list", "default", {})]


def test_a_command_that_speaks_is_given_the_http_answers_collected_audio(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    core.commands["train.preview"] = Command(Anything, lambda p, r, out: {  # type: ignore[arg-type]
        "out": type(out).__name__, "where": out.where("r1", False)})
    assert post(core, "/api/profiles/default/commands/train.preview", b"{}") == (
        200, {"data": {"out": "CollectedAudio", "where": "http"}})



@pytest.mark.parametrize(("path", "body", "content_type", "status", "code", "error"), [
    ("/api/profiles/default/commands/nope", b"{}", "application/json", 404, "unknown_command", None),
    ("/api/profiles/default/commands/speak", b'{"text": "Hi."}', "application/json", 400, "invalid_payload",
     "speak answers with audio: use POST /api/tts or the WebSocket /api/tts-stream"),
    ("/api/profiles/nobody/commands/samples.list", b"{}", "application/json", 404, "unknown_profile", None),
    ("/api/profiles/default/commands/samples.list", b"[]", "application/json", 400, "invalid_payload",
     "body must be a JSON object"),
    ("/api/profiles/default/commands/record", b"RIFF....", "application/octet-stream", 400, "invalid_json", None),
    ("/api/profiles/default/commands/record", b"[]", "application/json", 400, "invalid_payload",
     "body must be a JSON object"),  # a recording's envelope, read by the audio route's own reading
])
def test_a_command_is_refused_with_its_code(tmp_path: Path, path: str, body: bytes, content_type: str, status: int,
                                            code: str, error: str | None) -> None:
    got, answer = post(core_of(tmp_path), path, body, content_type)
    assert (got, answer["code"]) == (status, code)
    assert error is None or answer["error"] == error


# -- a sample's WAV, the report's picture -----------------------------------------------------------
def test_a_samples_wav_is_the_file_samples_show_names(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    wav = tmp_path / "s1.wav"
    wav.write_bytes(b"RIFF and the rest")
    core.commands["samples.show"] = core.asking("samples.show", {"path": str(wav)})
    status, headers, body = get(core, "/api/profiles/kitchen/samples/s1/audio")
    assert (status, body) == (200, b"RIFF and the rest")
    assert (headers["content-type"], headers["cache-control"]) == ("audio/wav", "no-cache")
    assert core.asked == [("samples.show", "kitchen", {"sample": "s1"})]
    core.commands["samples.show"] = core.asking("samples.show", ServiceError("unknown_sample", "no sample s2"))
    status, _, refused = get(core, "/api/profiles/kitchen/samples/s2/audio")
    assert (status, refused["code"]) == (404, "unknown_sample")


def test_the_report_picture_is_the_profiles_or_no_report(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    status, _, refused = get(core, "/api/profiles/kitchen/samples/report.png")
    assert (status, refused) == (404, {"error": "no report of 'kitchen' yet: run samples.report", "code": "no_report"})
    (tmp_path / "reports" / "kitchen").mkdir(parents=True)
    (tmp_path / "reports" / "kitchen" / "samples-report.png").write_bytes(b"\x89PNG kitchen")
    status, headers, body = get(core, "/api/profiles/kitchen/samples/report.png")
    assert (status, body) == (200, b"\x89PNG kitchen")
    assert (headers["content-type"], headers["cache-control"]) == ("image/png", "no-cache")
    assert get(core, "/api/profiles/default/samples/report.png")[0] == 404  # the kitchen's is not the default's
    status, _, refused = get(core, "/api/profiles/nobody/samples/report.png")
    assert (status, refused["code"]) == (404, "unknown_profile")


# -- POST /api/profiles/<profile>/voices/import -----------------------------------------------------
class Importer:
    """What the upload asks of the core: its room (recorded), then the import (recorded, with the
    uploaded file's content as it was then)."""

    def __init__(self, core: Any, refuse: ServiceError | None = None, fail: ServiceError | None = None,
                 free: int = 10 * 1024 * 1024) -> None:
        self.free = free
        self.rooms: list[tuple[str, int]] = []
        self.imports: list[tuple[str, dict[str, Any], bool, bytes]] = []
        self.refuse, self.fail = refuse, fail
        core.import_slot = ImportSlot()
        core.reserve_upload = self.reserve_upload
        core.import_voices = self.import_voices
        core.commands["voices.import"] = Command(Anything, lambda p, r, out: {"not": "the door's run"})  # type: ignore[arg-type]
        self.core = core

    def reserve_upload(self, profile: str, size: int) -> UploadRoom:
        self.rooms.append((profile, size))
        if self.refuse is not None:
            raise self.refuse
        self.core.import_slot.take()
        return UploadRoom(self.free)

    def import_voices(self, profile: str, request: Any, upload: bool = False) -> dict[str, Any]:
        fields = dict(request.model_extra or {})
        self.imports.append((profile, fields, upload, Path(fields["path"]).read_bytes()))
        if self.fail is not None:
            raise self.fail
        return {"imported": [{"name": "joe"}]}

    def slot_is_free(self) -> bool:
        try:
            self.core.import_slot.take()
        except ServiceError:
            return False
        self.core.import_slot.release()
        return True


def upload(core: Any, path: str, content: bytes, **settings: Any) -> tuple[int, Any]:
    async def conversation(client: TestClient) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("file", content, filename="joe.onnx")
        form.add_field("scope", "household")
        form.add_field("name", "joe")
        response = await client.post(path, data=form)
        return response.status, await response.json()
    return with_client(core, conversation, **settings)


def test_an_upload_is_imported_by_the_cores_import_then_deleted(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    importer = Importer(core)
    status, body = upload(core, "/api/profiles/kitchen/voices/import", b"onnx bytes", voice_import_max_mb=1)
    assert (status, body) == (200, {"data": {"imported": [{"name": "joe"}]}})
    (profile, size), = importer.rooms
    assert profile == "kitchen" and 10 < size < 1024  # the form's announced length
    (profile, fields, from_upload, content), = importer.imports
    assert (profile, from_upload, content) == ("kitchen", True, b"onnx bytes")
    assert {k: fields[k] for k in ("scope", "name", "replace")} == {"scope": "household", "name": "joe", "replace": False}
    assert Path(fields["path"]).name == "joe.onnx" and not Path(fields["path"]).exists()  # deleted once imported
    assert list((tmp_path / "uploads").iterdir()) == [] and importer.slot_is_free()


def test_an_upload_takes_its_limit_in_mib(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    importer = Importer(core)
    status, _ = upload(core, "/api/profiles/default/voices/import", bytes(1000 * 1024), voice_import_max_mb=1)
    assert status == 200  # just under a MiB
    status, refused = upload(core, "/api/profiles/default/voices/import", bytes(1024 * 1024), voice_import_max_mb=1)
    assert (status, refused["code"]) == (413, "payload_too_large")  # a MiB of file and its form: refused from the head
    assert len(importer.rooms) == 1 and importer.slot_is_free()


@pytest.mark.parametrize(("refuse", "fail", "status", "code"), [
    (ServiceError("busy", "another voice import is running"), None, 429, "busy"),
    (None, ServiceError("not_a_voice", "this is no voice"), 400, "not_a_voice"),
])
def test_a_refused_upload_gives_the_slot_back_and_leaves_nothing(tmp_path: Path, refuse: ServiceError | None,
                                                                 fail: ServiceError | None, status: int, code: str) -> None:
    core = core_of(tmp_path)
    importer = Importer(core, refuse, fail)
    if refuse is not None:
        core.import_slot.take()  # what the refusing reservation would not have taken
    got, refused = upload(core, "/api/profiles/default/voices/import", b"onnx bytes")
    assert (got, refused["code"]) == (status, code)
    if refuse is None:
        assert importer.slot_is_free() and list((tmp_path / "uploads").iterdir()) == []


def test_an_upload_larger_than_the_disk_room_is_disk_full(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    importer = Importer(core, free=5)
    status, refused = upload(core, "/api/profiles/default/voices/import", b"onnx bytes")
    assert (status, refused["code"]) == (507, "disk_full")
    assert importer.imports == [] and importer.slot_is_free() and list((tmp_path / "uploads").iterdir()) == []


def test_an_upload_to_an_unknown_profile_asks_for_no_room(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    importer = Importer(core)
    status, refused = upload(core, "/api/profiles/nobody/voices/import", b"onnx bytes")
    assert (status, refused["code"]) == (404, "unknown_profile") and importer.rooms == []


def test_a_form_without_a_file_gives_the_slot_back(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    importer = Importer(core)
    status, refused = post(core, "/api/profiles/default/voices/import", b"not a form", "text/plain")
    assert (status, refused["code"]) == (400, "invalid_payload") and importer.slot_is_free()


# -- the errors middleware --------------------------------------------------------------------------
SAMPLES = "/api/profiles/default/commands/samples.list"


def answer_to(tmp_path: Path, caplog: pytest.LogCaptureFixture, raised: BaseException) -> tuple[int, Any]:
    """The door's answer when the command raises ``raised`` (its log lines in ``caplog``)."""
    core = core_of(tmp_path)
    core.commands["samples.list"] = core.asking("samples.list", raised)
    with caplog.at_level(logging.INFO, "agent.http.api"):
        return post(core, SAMPLES, b"{}")


@pytest.mark.parametrize(("raised", "status", "body", "level"), [
    (ServiceError("busy", "full", {"depth": 4}), 429, {"error": "full", "code": "busy", "data": {"depth": 4}},
     logging.WARNING),
    (ServiceError("client_gone", "the HTTP client has gone"), 499,
     {"error": "the HTTP client has gone", "code": "client_gone"}, logging.INFO),
    (ProviderError("the engine broke"), 502, {"error": "the engine broke", "code": "provider_error"}, logging.WARNING),
])
def test_a_refusal_is_its_code_and_status_and_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           raised: Exception, status: int, body: dict[str, Any],
                                                           level: int) -> None:
    assert answer_to(tmp_path, caplog, raised) == (status, body)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (level, f"HTTP POST {SAMPLES} refused: {body['code']}: {body['error']}")]


def test_a_bug_is_internal_error_and_its_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert answer_to(tmp_path, caplog, KeyError("bug")) == (500, {"error": "KeyError: 'bug'", "code": "internal_error"})
    (record,) = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.ERROR, f"HTTP POST {SAMPLES} failed")
    assert record.exc_info is not None


def test_a_lost_connection_is_invalid_payload_and_an_info_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert answer_to(tmp_path, caplog, ConnectionResetError("reset")) == (
        400, {"error": "the connection was lost", "code": "invalid_payload"})
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, f"HTTP POST {SAMPLES}: the client went away")]


def test_aiohttps_own_answers_pass_and_a_body_too_large_for_it_is_payload_too_large(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    core.commands["samples.list"] = core.asking("samples.list", web.HTTPForbidden(text="not yours"))
    assert post(core, "/api/profiles/default/commands/samples.list", b"{}") == (403, b"not yours")
    core.commands["samples.list"] = core.asking("samples.list", web.HTTPRequestEntityTooLarge(max_size=1, actual_size=2))
    assert post(core, "/api/profiles/default/commands/samples.list", b"{}", max_audio_bytes=5000) == (
        413, {"error": "the body is larger than 5000 bytes", "code": "payload_too_large"})
    status, _, body = get(core, "/api/nothing-here")
    assert (status, body) == (404, b"404: Not Found")


# -- what the door's guard and the OpenAI route are given -------------------------------------------
def test_the_settings_token_is_asked_for_except_by_the_page(tmp_path: Path) -> None:
    core = core_of(tmp_path)

    async def conversation(client: TestClient) -> list[int]:
        without = await client.get("/api/voices")
        with_token = await client.get("/api/voices", headers={"Authorization": f"Bearer {TOKEN}"})
        page = await client.get("/")
        return [without.status, with_token.status, page.status]

    assert with_client(core, conversation, http_token=TOKEN) == [401, 200, 200]


def test_without_a_token_a_foreign_host_is_told_the_settings_port(tmp_path: Path) -> None:
    async def conversation(client: TestClient) -> tuple[int, Any]:
        response = await client.get("/api/voices", headers={"Host": "evil.example"})
        return response.status, await response.json()

    status, body = with_client(core_of(tmp_path), conversation, http_port=8123)
    assert (status, body["code"]) == (403, "forbidden") and "open http://127.0.0.1:8123/" in body["error"]


def test_the_openai_route_takes_the_request_limit(tmp_path: Path) -> None:
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "x" * 400}).encode()
    status, _ = post(core_of(tmp_path), "/v1/audio/speech", body, max_request_bytes=256)
    assert status == 413


def test_the_openai_route_speaks_through_the_apis_command_table(tmp_path: Path) -> None:
    core = core_of(tmp_path)
    core.commands["config"] = core.asking("config", {"config": {}})
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "Hi."}).encode()
    status, audio = post(core, "/v1/audio/speech", body)
    assert (status, audio) == (200, SILENCE)  # the fake core's one sentence, as it handed it over
    assert core.asked == [("config", "default", {})] and len(core.speeches) == 1
