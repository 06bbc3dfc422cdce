"""The blob route (agent/http/nodes.py): a kept file by its SHA-256 to a bearer of the token only
(on loopback too), streamed with Range; and the node list."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.http.api import Api
from agent.settings import AgentSettings
from tests.agent.http.fake_core import fake_core

TOKEN = "t" * 32
BODY = bytes(range(256)) * 40
SHA = hashlib.sha256(BODY).hexdigest()


def ask(tmp_path: Path, path: str, headers: dict[str, str] | None = None, token: str | None = TOKEN,
        ) -> tuple[int, bytes, dict[str, str]]:
    (tmp_path / "rvc").mkdir(exist_ok=True)
    (tmp_path / "rvc" / "anna.pth").write_bytes(BODY)
    core = fake_core(kept=[tmp_path])

    async def go() -> tuple[int, bytes, dict[str, str]]:
        async with TestClient(TestServer(Api(core, AgentSettings(http_token=token)).app())) as client:  # type: ignore[arg-type]
            response = await client.get(path, headers=headers or {})
            return response.status, await response.read(), dict(response.headers)
    return asyncio.run(go())


def bearer(token: str = TOKEN, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def test_a_kept_file_is_served_whole(tmp_path: Path) -> None:
    status, body, headers = ask(tmp_path, f"/api/blobs/{SHA}", bearer())
    assert status == 200 and body == BODY
    assert headers["Content-Type"] == "application/octet-stream" and headers["Accept-Ranges"] == "bytes"


def test_a_range_is_served_from_where_it_starts(tmp_path: Path) -> None:
    status, body, headers = ask(tmp_path, f"/api/blobs/{SHA.upper()}", bearer(Range="bytes=1000-"))
    assert status == 206 and body == BODY[1000:]
    assert headers["Content-Range"] == f"bytes 1000-{len(BODY) - 1}/{len(BODY)}"


def test_a_range_past_the_end_is_416(tmp_path: Path) -> None:
    status, _, _ = ask(tmp_path, f"/api/blobs/{SHA}", bearer(Range=f"bytes={len(BODY) + 5}-"))
    assert status == 416


@pytest.mark.parametrize(("headers", "token"), [
    ({}, TOKEN),  # no token sent
    (bearer("w" * 32), TOKEN),  # a wrong one
    ({}, None),  # a node without a token serves no blob, on loopback too
])
def test_no_blob_without_the_token(tmp_path: Path, headers: dict[str, str], token: str | None) -> None:
    status, body, _ = ask(tmp_path, f"/api/blobs/{SHA}", headers, token)
    assert status == 401 and BODY[:64] not in body


def test_a_hash_not_kept_is_404(tmp_path: Path) -> None:
    status, body, _ = ask(tmp_path, f"/api/blobs/{'0' * 64}", bearer())
    assert status == 404 and b"file_not_found" in body


@pytest.mark.parametrize("name", ["abc", "z" * 64, "a" * 65, "..%2F..%2Fetc%2Fpasswd"])
def test_a_malformed_hash_is_400(tmp_path: Path, name: str) -> None:
    status, _, _ = ask(tmp_path, f"/api/blobs/{name}", bearer())
    assert status == 400


def test_the_node_list(tmp_path: Path) -> None:
    status, body, _ = ask(tmp_path, "/api/nodes", bearer())
    import json

    document: dict[str, Any] = json.loads(body)
    assert status == 200 and document == {"node": "here", "nodes": []}


def test_a_blob_is_bytes_never_cached_whatever_its_name(tmp_path: Path) -> None:
    wav = b"RIFF" + bytes(100)
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "take.wav").write_bytes(wav)
    status, body, headers = ask(tmp_path, f"/api/blobs/{hashlib.sha256(wav).hexdigest()}", bearer())
    assert status == 200 and body == wav
    assert headers["Content-Type"] == "application/octet-stream"  # not audio/wav: a blob is its bytes
    assert headers["Cache-Control"] == "no-store"


def test_each_refusal_says_what_to_do(tmp_path: Path) -> None:
    import json

    _, body, _ = ask(tmp_path, f"/api/blobs/{SHA}", {}, None)
    assert json.loads(body)["error"] == ("this node serves its files to other nodes only with "
                                         "VOICE_AGENT_HTTP_TOKEN set (the household's token)")
    _, body, _ = ask(tmp_path, "/api/blobs/abc", bearer())
    assert json.loads(body)["error"] == "a blob is named by its SHA-256: 64 hex digits"
    _, body, _ = ask(tmp_path, f"/api/blobs/{'0' * 64}", bearer())
    assert json.loads(body)["error"] == f"this node keeps no file with SHA-256 {'0' * 64}"
