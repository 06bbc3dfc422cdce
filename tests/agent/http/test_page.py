"""agent/http/page.py in process (aiohttp's test client): the page's files by name with their type
and headers, nothing else from the folder, and which paths are the page's (served without the token)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.http.page import PAGE_DIR, POLICY, Page

HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}


def fetch(page: Page, *paths: str) -> list[tuple[int, dict[str, str], bytes]]:
    async def go() -> list[tuple[int, dict[str, str], bytes]]:
        app = web.Application()
        app.add_routes(page.routes())
        answers = []
        async with TestClient(TestServer(app)) as client:
            for path in paths:
                response = await client.get(path)
                answers.append((response.status, dict(response.headers), await response.read()))
        return answers
    return asyncio.run(asyncio.wait_for(go(), 10))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in [("index.html", "<p>home</p>"), ("app.js", "go()"), ("style.css", "p{}"), ("icon.svg", "<svg/>"),
                       ("Upper.js", "no"), ("notes.txt", "no"), ("-dash.js", "no"), ("app.js.bak", "no"),
                       ("x.html5", "no")]:
        (tmp_path / name).write_text(text)
    (tmp_path / "dir.js").mkdir()
    return tmp_path


@pytest.mark.parametrize(("path", "body", "kind"), [
    ("/", b"<p>home</p>", "text/html"), ("/page/index.html", b"<p>home</p>", "text/html"),
    ("/page/app.js", b"go()", "text/javascript"), ("/page/style.css", b"p{}", "text/css"),
    ("/page/icon.svg", b"<svg/>", "image/svg+xml"),
])
def test_each_file_is_served_with_its_type_and_the_page_s_headers(folder: Path, path: str, body: bytes, kind: str) -> None:
    [(status, headers, got)] = fetch(Page(folder), path)
    assert (status, got) == (200, body)
    assert headers["Content-Type"].split(";")[0] == kind
    assert {name: headers.get(name) for name in HEADERS} == HEADERS


@pytest.mark.parametrize("name", ["Upper.js", "notes.txt", "-dash.js", "app.js.bak", "x.html5", "dir.js", "missing.js",
                                  "..%2Findex.html"])
def test_only_the_page_s_own_files_by_name(folder: Path, name: str) -> None:
    [(status, _, body)] = fetch(Page(folder), f"/page/{name}")
    assert status == 404
    assert name == "..%2Findex.html" or body == b"no such file of the page"


def test_a_missing_folder_serves_nothing(tmp_path: Path) -> None:
    assert [status for status, _, _ in fetch(Page(tmp_path / "none"), "/", "/page/app.js")] == [404, 404]


def test_the_shipped_page_is_the_default() -> None:
    [(status, _, body)] = fetch(Page(), "/")
    assert status == 200 and body == (PAGE_DIR / "index.html").read_bytes()


@pytest.mark.parametrize(("path", "page"), [
    ("/", True), ("/page/app.js", True), ("/page/", True),
    ("", False), ("/pages/app.js", False), ("/page", False), ("/api/page/x", False), ("//", False), ("/api/tts", False),
])
def test_which_paths_are_the_page_s(path: str, page: Any) -> None:
    assert Page.is_page(path) is page
