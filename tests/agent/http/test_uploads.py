"""agent/http/uploads.py in process (aiohttp's test client): a voice file's multipart form, each
rule of it: the client's file name made one safe segment, the size cap by the announced length and
by the bytes that came (at the cap is taken, one more is not), the small fields' length, once
each, nothing unknown or nested, a stalled upload dropped, and nothing left behind a refusal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.errors import ServiceError
from agent.http import uploads
from agent.http.errors import error_response
from agent.http.uploads import FIELD_BYTES, Upload, import_document, receive, safe_file_name

BOUNDARY = "b0undary"
LIMIT = 1000


@pytest.mark.parametrize(("raw", "safe"), [
    (None, "upload"), ("", "upload"), ("My voice (v2).zip", "My_voice__v2_.zip"), ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\v.onnx", "v.onnx"), ("a/b\\c.zip", "c.zip"), ("...", "upload"), ("._-a.zip", "a.zip"),
    (".hidden.onnx", "hidden.onnx"), ("-rf.zip", "rf.zip"), ("a.b-c_d.onnx", "a.b-c_d.onnx"), ("dir/", "upload"),
    ("x" * 200 + ".zip", "x" * 128), ("y" * 124 + ".zip", "y" * 124 + ".zip"), ("é.onnx", "é.onnx"),
    ("a\x00b.zip", "a_b.zip"), ("Xenia.onnx", "Xenia.onnx"),
])
def test_the_client_s_file_name_becomes_one_plain_segment(raw: str | None, safe: str) -> None:
    assert safe_file_name(raw) == safe


def part(name: str, value: bytes, filename: str | None = None, kind: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if kind:
        head += f"Content-Type: {kind}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


class Door:
    """A bare app whose one route hands the request to ``receive`` and answers what it made."""

    def __init__(self, tmp_path: Path, take_fails_after: int | None = None, limit: int = LIMIT) -> None:
        self.dir = tmp_path / "uploads"
        self.limit = limit
        self.taken: list[int] = []
        self.take_fails_after = take_fails_after
        self.upload: Upload | None = None

    def take(self, size: int) -> None:
        if self.take_fails_after is not None and sum(self.taken) + size > self.take_fails_after:
            raise ServiceError("disk_full", "no room")
        self.taken.append(size)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            upload = await receive(request, self.dir, self.limit, self.take)
        except ServiceError as exc:
            return error_response(exc.code, str(exc))
        self.upload = upload
        assert upload.file is not None
        return web.json_response({"file": upload.file.name, "content": upload.file.read_bytes().decode("latin-1"),
                                  "fields": upload.fields, "folder": upload.folder.parent == self.dir
                                  and upload.folder.name.startswith("upload-") and upload.file.parent == upload.folder})

    def post(self, body: bytes | Any, kind: str = f"multipart/form-data; boundary={BOUNDARY}",
             chunked: bool = False) -> tuple[int, dict[str, Any]]:
        async def go() -> tuple[int, dict[str, Any]]:
            app = web.Application()
            app.router.add_post("/up", self.handle)
            async with TestClient(TestServer(app)) as client:
                data = body
                if chunked:
                    async def pieces() -> AsyncIterator[bytes]:
                        for start in range(0, len(body), 100):
                            yield body[start:start + 100]
                    data = pieces()
                response = await client.post("/up", data=data, headers={"Content-Type": kind})
                return response.status, await response.json()
        return asyncio.run(asyncio.wait_for(go(), 10))

    def left(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir()) if self.dir.exists() else []


def test_the_file_and_its_fields_are_taken(tmp_path: Path) -> None:
    door = Door(tmp_path)
    status, answer = door.post(form(part("scope", b" profile \n"), part("file", b"voice bytes", "My voice.zip"),
                                     part("name", "Ann\xe9".encode("latin-1")), part("replace", b"yes")))
    assert status == 200
    assert answer == {"file": "My_voice.zip", "content": "voice bytes", "folder": True,
                      "fields": {"scope": "profile", "name": "Ann\ufffd", "replace": "yes"}}
    assert door.taken == [len(b"voice bytes")]
    assert door.upload is not None and door.upload.folder.is_dir()
    door.upload.discard()
    assert door.left() == []
    door.upload.discard()  # twice is harmless
    status, answer = door.post(form(part("file", b"more", "v.onnx")))  # the uploads folder is there now
    assert status == 200 and answer["content"] == "more"


def test_a_file_at_the_cap_is_taken_and_one_byte_more_is_cut(tmp_path: Path) -> None:
    door = Door(tmp_path)
    status, answer = door.post(form(part("file", b"a" * LIMIT, "v.onnx")), chunked=True)
    assert status == 200 and len(answer["content"]) == LIMIT and sum(door.taken) == LIMIT
    status, answer = Door(tmp_path / "2").post(form(part("file", b"a" * (LIMIT + 1), "v.onnx")), chunked=True)
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert answer["error"] == (f"the upload is more than {LIMIT} bytes, the limit (VOICE_AGENT_VOICE_IMPORT_MAX_MB)")


def test_the_cap_counts_every_chunk_of_the_file(tmp_path: Path) -> None:
    door = Door(tmp_path, limit=270 * 1024)  # more than one chunk read (256 KiB), each under the cap
    status, answer = door.post(form(part("file", b"a" * 300 * 1024, "v.onnx")), chunked=True)
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert door.left() == []


def test_a_body_that_says_it_is_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    door = Door(tmp_path)
    status, answer = door.post(form(part("file", b"a" * LIMIT, "v.onnx")))  # its length says more than LIMIT
    assert (status, answer["code"]) == (413, "payload_too_large")
    assert door.taken == [] and not door.dir.exists()


def test_what_the_disk_has_no_room_for_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    door = Door(tmp_path, take_fails_after=10)
    status, answer = door.post(form(part("file", b"a" * 500, "v.onnx")), chunked=True)
    assert (status, answer["code"]) == (507, "disk_full")
    assert door.left() == []


@pytest.mark.parametrize(("size", "taken"), [(FIELD_BYTES, True), (FIELD_BYTES + 1, False)])
def test_a_field_may_hold_its_bytes_and_no_more(tmp_path: Path, size: int, taken: bool) -> None:
    door = Door(tmp_path)
    status, answer = door.post(form(part("name", b"n" * size), part("file", b"x", "v.onnx")), chunked=True)
    if taken:
        assert status == 200 and answer["fields"] == {"name": "n" * FIELD_BYTES}
    else:
        assert (status, answer) == (400, {"code": "invalid_payload",
                                          "error": f"the field 'name' is longer than {FIELD_BYTES} bytes"})
        assert door.left() == []


UNEXPECTED = "optionally scope, name, replace, once each"


@pytest.mark.parametrize(("parts", "error"), [
    ([part("file", b"x", "a.onnx"), part("file", b"y", "b.onnx")], f"unexpected form field 'file': send file, and {UNEXPECTED}"),
    ([part("name", b"a"), part("name", b"b"), part("file", b"x", "v.onnx")],
     f"unexpected form field 'name': send file, and {UNEXPECTED}"),
    ([part("path", b"/etc/passwd"), part("file", b"x", "v.onnx")], f"unexpected form field 'path': send file, and {UNEXPECTED}"),
    ([part("scope", b"profile")], "the form has no 'file' field"),
    ([], "the form has no 'file' field"),
])
def test_a_form_with_a_field_too_many_or_no_file_is_refused_and_nothing_is_left(tmp_path: Path, parts: list[bytes],
                                                                                 error: str) -> None:
    door = Door(tmp_path)
    status, answer = door.post(form(*parts))
    assert (status, answer) == (400, {"code": "invalid_payload", "error": error})
    assert door.left() == []


def test_each_known_field_is_taken_once(tmp_path: Path) -> None:
    status, answer = Door(tmp_path).post(form(part("replace", b"no"), part("file", b"x", "v.onnx"), part("scope", b"s")))
    assert status == 200 and answer["fields"] == {"replace": "no", "scope": "s"}


def test_a_nested_form_is_refused(tmp_path: Path) -> None:
    inner = f"--inner\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--inner--\r\n".encode()
    door = Door(tmp_path)
    status, answer = door.post(form(part("file", inner, kind="multipart/mixed; boundary=inner")))
    assert (status, answer) == (400, {"code": "invalid_payload", "error": "nested multipart forms are not taken"})
    assert door.left() == []


@pytest.mark.parametrize("kind", ["application/json", "multipart/mixed; boundary=b0undary", "text/plain"])
def test_anything_but_a_multipart_form_is_refused(tmp_path: Path, kind: str) -> None:
    door = Door(tmp_path)
    status, answer = door.post(form(part("file", b"x", "v.onnx")), kind=kind)
    assert (status, answer) == (400, {"code": "invalid_payload",
                                      "error": "send the voice as a multipart/form-data upload with a 'file' field"})
    assert not door.dir.exists()


def test_a_stalled_upload_is_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "IDLE_SECONDS", 0.3)
    door = Door(tmp_path)

    async def go() -> tuple[int, dict[str, Any]]:
        app = web.Application()
        app.router.add_post("/up", door.handle)
        never = asyncio.Event()

        async def stalls() -> AsyncIterator[bytes]:
            yield part("file", b"abc", "v.onnx")[:-10]
            await never.wait()

        async with TestClient(TestServer(app)) as client:
            response = await client.post("/up", data=stalls(),
                                         headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            return response.status, await response.json()

    status, answer = asyncio.run(asyncio.wait_for(go(), 10))
    assert (status, answer) == (408, {"code": "request_timeout", "error": "the upload stalled for 0 s"})
    assert door.left() == []


def test_read_waits_its_seconds_and_says_how_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "IDLE_SECONDS", 1.0)

    async def go() -> None:
        assert await uploads._read(asyncio.sleep(0, result="done")) == "done"
        with pytest.raises(ServiceError) as stalled:
            await uploads._read(asyncio.Event().wait())
        assert (stalled.value.code, str(stalled.value)) == ("request_timeout", "the upload stalled for 1 s")

    asyncio.run(asyncio.wait_for(go(), 10))


def upload(tmp_path: Path, **fields: Any) -> Upload:
    return Upload(tmp_path, tmp_path / "v.zip", fields)


@pytest.mark.parametrize(("replace", "wanted"), [
    ("", False), ("true", True), ("TRUE", True), ("1", True), ("on", True), ("yes", True), ("Yes", True),
    ("false", False), ("0", False), ("off", False), ("no", False), ("NO", False),
])
def test_replace_takes_the_words_of_a_checkbox(tmp_path: Path, replace: str, wanted: bool) -> None:
    assert import_document(upload(tmp_path, replace=replace))["replace"] is wanted


@pytest.mark.parametrize("replace", ["maybe", "truee", "y", "2", "true " * 10])
def test_replace_refuses_other_words_and_says_which(tmp_path: Path, replace: str) -> None:
    with pytest.raises(ServiceError) as refused:
        import_document(upload(tmp_path, replace=replace))
    assert refused.value.code == "invalid_payload"
    assert str(refused.value) == f"replace must be true or false, not {replace.lower()[:20]!r}"


def test_the_import_request_names_the_file_and_only_the_fields_given(tmp_path: Path) -> None:
    assert import_document(upload(tmp_path)) == {"path": str(tmp_path / "v.zip"), "replace": False}
    assert import_document(upload(tmp_path, scope="", name="")) == {"path": str(tmp_path / "v.zip"), "replace": False}
    assert import_document(upload(tmp_path, scope="profile", name="Ann", replace="on")) == {
        "path": str(tmp_path / "v.zip"), "scope": "profile", "name": "Ann", "replace": True}
