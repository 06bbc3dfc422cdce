#!/usr/bin/env python3
"""Reference receiver: run beside a GPT-SoVITS server on another machine so the agent can upload
reference audio to it (GPT-SoVITS' own APIs only take a path on the server's disk).

    python3 receiver.py --dir /srv/gpt-sovits-refs --port 9881 --token SECRET

``PUT /references/<sha256>.wav|.mp3`` stores the body in ``--dir`` and answers
``{"path": "<absolute path on this machine>"}``; the agent then sends that path as
``ref_audio_path``. Files are named by their content, so a repeated upload is harmless.
Standard library only: it runs in GPT-SoVITS' own Python without installing anything.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NAME = re.compile(r"^/references/([0-9a-f]{32,64})\.(wav|mp3)$")
DEFAULT_LIMIT = 32 * 1024 * 1024


class ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ReceiverServer

    def do_PUT(self) -> None:
        match = NAME.match(self.path)
        if match is None:
            return self._answer(404, {"message": "PUT /references/<sha256 hex>.wav|.mp3"})
        if not self._authorized():
            return self._answer(401, {"message": "missing or wrong token"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._answer(411, {"message": "Content-Length is required"})
        if not 0 < length <= self.server.limit:
            return self._answer(413, {"message": f"file must be 1 byte to {self.server.limit} bytes"})
        data = self.rfile.read(length)
        digest, suffix = match.groups()
        if not hashlib.sha256(data).hexdigest().startswith(digest):
            return self._answer(400, {"message": "the name does not match the content's sha256"})
        target = self.server.directory / f"{digest}.{suffix}"
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.server.directory, suffix=".part")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        self._answer(200, {"path": str(target)})

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/health" else 404, {"message": "reference receiver"})

    def _authorized(self) -> bool:
        if not self.server.token:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.server.token}".encode())

    def _answer(self, status: int, body: dict[str, str]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("receiver: " + (format % args) + "\n")


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], directory: Path, token: str, limit: int = DEFAULT_LIMIT) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory.resolve()
        self.token = token
        self.limit = limit
        super().__init__(address, ReceiverHandler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="where uploaded references are kept")
    parser.add_argument("-a", "--address", default="0.0.0.0", help="address to listen on")
    parser.add_argument("-p", "--port", type=int, default=9881)
    parser.add_argument("--token", default=os.environ.get("SOVITS_RECEIVER_TOKEN", ""), help="shared secret (or SOVITS_RECEIVER_TOKEN)")
    args = parser.parse_args(argv)
    server = ReceiverServer((args.address, args.port), args.dir, args.token)
    print(f"reference receiver on {args.address}:{server.server_address[1]}, storing in {server.directory}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
