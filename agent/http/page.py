"""The household's web page: static files that ship in the package (``agent/http/page/``), served
as they are (no build step). The page holds no logic of the agent's: it calls the API like any
client. Only the files found here at start-up are served, by name: no path from a request ever
reaches the disk. They carry no secret, so they are served without the token; every call the
page then makes to the API needs it."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

PAGE_DIR = Path(__file__).resolve().parent / "page"
TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
}
NAME = re.compile(r"^[a-z][a-z0-9-]*\.(html|js|css|svg)$")
# The page's own files only; audio and pictures it fetches become blob: URLs.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
          "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}


class Page:
    def __init__(self, directory: Path = PAGE_DIR) -> None:
        self._files = {p.name: p for p in directory.iterdir() if p.is_file() and NAME.match(p.name)} \
            if directory.is_dir() else {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.index), web.get("/page/{name}", self.asset)]

    @staticmethod
    def is_page(path: str) -> bool:
        return path == "/" or path.startswith("/page/")

    async def index(self, request: web.Request) -> web.StreamResponse:
        return self._serve("index.html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        return self._serve(request.match_info["name"])

    def _serve(self, name: str) -> web.StreamResponse:
        path = self._files.get(name)
        if path is None:
            raise web.HTTPNotFound(text="no such file of the page")
        return web.FileResponse(path, headers={**HEADERS, "Content-Type": TYPES[path.suffix]})
