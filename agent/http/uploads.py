"""A voice file uploaded as a multipart form (``file``, and the small fields ``scope``, ``name``,
``replace``), streamed to a folder of its own under ``out/uploads`` within ``voice_import_max_mb``:
a body that says it is larger is refused before it is read, one that grows past the cap is cut,
one that stalls for ``IDLE_SECONDS`` is dropped. Nothing of it is trusted: the client's file name
only keeps its suffix and stem (what the import reads the format and the voice's name from),
the content is the import's to check."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from agent.errors import ServiceError
from agent.http.bodies import announced
from agent.voices.imports import UPLOAD_PREFIX

IDLE_SECONDS = 30.0  # a slow upload keeps going; a stalled one does not hold its connection
FIELD_BYTES = 1024  # scope, name, replace: short words
FIELDS = ("scope", "name", "replace")
_UNSAFE = re.compile(r"[^\w.-]")


@dataclass
class Upload:
    """The uploaded file (in a folder of its own, deleted by ``discard``) and the form's fields."""

    folder: Path
    file: Path | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def safe_file_name(raw: str | None) -> str:
    """The client's file name as one plain path segment (``My voice (v2).zip`` -> ``My_voice__v2_.zip``)."""
    base = re.split(r"[/\\]", raw or "")[-1]
    name = _UNSAFE.sub("_", base).lstrip("._-")[:128]
    return name or "upload"


async def receive(request: web.Request, uploads_dir: Path, limit: int,
                  take: Callable[[int], None] = lambda size: None) -> Upload:
    """The form, its file written under ``uploads_dir``; ``payload_too_large``, ``request_timeout``
    or ``invalid_payload`` (no multipart form, no ``file``, an unknown field); ``take`` is told of
    each chunk before it is written (the disk's room: it raises ``disk_full``)."""
    announced(request, limit)
    if not request.content_type.startswith("multipart/form-data"):
        raise ServiceError("invalid_payload", "send the voice as a multipart/form-data upload with a 'file' field")
    uploads_dir.mkdir(parents=True, exist_ok=True)
    upload = Upload(Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=uploads_dir)))
    try:
        reader = await request.multipart()
        while (part := await _next(reader)) is not None:
            if not isinstance(part, BodyPartReader):
                raise ServiceError("invalid_payload", "nested multipart forms are not taken")
            if part.name == "file" and upload.file is None:
                upload.file = upload.folder / safe_file_name(part.filename)
                await _save(part, upload.file, limit, take)
            elif part.name in FIELDS and part.name not in upload.fields:
                value = await _read(part.read_chunk(FIELD_BYTES + 1))
                if len(value) > FIELD_BYTES:
                    raise ServiceError("invalid_payload", f"the field {part.name!r} is longer than {FIELD_BYTES} bytes")
                upload.fields[part.name] = value.decode("utf-8", errors="replace").strip()
            else:
                raise ServiceError("invalid_payload", f"unexpected form field {part.name!r}: send file, and "
                                                      "optionally scope, name, replace, once each")
        if upload.file is None:
            raise ServiceError("invalid_payload", "the form has no 'file' field")
    except BaseException:
        upload.discard()
        raise
    return upload


async def _next(reader: Any) -> Any:
    return await _read(reader.next())


async def _read(awaitable: Any) -> Any:
    try:
        async with asyncio.timeout(IDLE_SECONDS):
            return await awaitable
    except TimeoutError:
        raise ServiceError("request_timeout", f"the upload stalled for {IDLE_SECONDS:.0f} s") from None


async def _save(part: BodyPartReader, path: Path, limit: int, take: Callable[[int], None]) -> None:
    written = 0
    with open(path, "xb") as out:
        while chunk := await _read(part.read_chunk(256 * 1024)):
            written += len(chunk)
            if written > limit:
                raise ServiceError("payload_too_large", f"the upload is more than {limit} bytes, the limit "
                                                        "(VOICE_AGENT_VOICE_IMPORT_MAX_MB)")
            take(len(chunk))
            out.write(chunk)


def import_document(upload: Upload) -> dict[str, Any]:
    """The ``voices.import`` request the upload makes (its fields validated by the command)."""
    document: dict[str, Any] = {"path": str(upload.file)}
    if upload.fields.get("scope"):
        document["scope"] = upload.fields["scope"]
    if upload.fields.get("name"):
        document["name"] = upload.fields["name"]
    replace = upload.fields.get("replace", "").lower()
    if replace not in ("", "true", "false", "1", "0", "on", "off", "yes", "no"):
        raise ServiceError("invalid_payload", f"replace must be true or false, not {replace[:20]!r}")
    document["replace"] = replace in ("true", "1", "on", "yes")
    return document
