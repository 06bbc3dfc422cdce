"""The household's nodes as this node knows them (``GET /api/nodes``), and the files it keeps for
the others by content hash (``GET /api/blobs/<sha256>``: agent/blobs/index.py says which, and on a
worker agent/blobs/offers.py the files it made for another node's training job).

A blob is served to a bearer of ``VOICE_AGENT_HTTP_TOKEN`` only, on loopback too: another node
asks with the household's token, and a node without one serves none. It is streamed from the
file with HTTP Range (206, 416: aiohttp's file response), so a broken transfer resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from agent.blobs.index import check_hash
from agent.http.errors import error_response
from agent.nodes.service import NodeService


class NodesDoor:
    def __init__(self, nodes: NodeService, find: Callable[[str], Path | None], token_set: bool) -> None:
        """``find``: the file kept or offered with a hash (file work: it runs off the event loop)."""
        self._nodes = nodes
        self._find = find
        self._token_set = token_set  # the guard checks the token itself; without one, no blob

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/nodes", self.list), web.get("/api/blobs/{sha256}", self.blob)]

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response({"node": self._nodes.node, "nodes": self._nodes.registry.nodes()})

    async def blob(self, request: web.Request) -> web.StreamResponse:
        if not self._token_set:
            return error_response("unauthorized", "this node serves its files to other nodes only with "
                                                  "VOICE_AGENT_HTTP_TOKEN set (the household's token)")
        sha256 = check_hash(request.match_info["sha256"])
        if sha256 is None:
            return error_response("invalid_params", "a blob is named by its SHA-256: 64 hex digits")
        path = await asyncio.get_running_loop().run_in_executor(None, self._find, sha256)
        if path is None:
            return error_response("file_not_found", f"this node keeps no file with SHA-256 {sha256}")
        response = web.FileResponse(path, headers={"Content-Type": "application/octet-stream",
                                                   "Cache-Control": "no-store"})
        return response
