#!/usr/bin/env python3
"""A stand-in for a GPT-SoVITS API server, for tests and benchmarks.

It follows the documented contracts of ``api_v2.py`` (``/tts``, ``/control``, ``/set_*``) and of
the older ``api.py`` (``/``, ``/change_refer``, ``/control``): the same fields and defaults, the
same checks in the same order with the same messages, 400 ``{"message": ...}`` and
``{"message": "tts failed", "Exception": ...}`` (v1: ``{"code": 400, "message": ...}``), FastAPI's
404/422 bodies, a whole WAV (Content-Length) or, when streaming, a WAV header with zero data
length then raw int16 PCM, one HTTP chunk per piece, and a connection broken off when synthesis
fails after streaming began. Instead of a model it "speaks" by looping the reference audio
(resampled to the model's rate) for a length that follows the text and ``speed_factor``, so the
answer is the reference voice and a missing, unreadable or wrong-length reference fails the way
the real server fails. Runs in a thread (``FakeSovits``) or as the server command
(``python tests/fake_sovits.py -a 127.0.0.1 -p 9880 [-c config]``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import wave
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

V2_FIELDS: dict[str, Any] = {  # api_v2 TTS_Request and its defaults
    "text": None, "text_lang": None, "ref_audio_path": None, "aux_ref_audio_paths": None, "prompt_lang": None,
    "prompt_text": "", "top_k": 15, "top_p": 1.0, "temperature": 1.0, "text_split_method": "cut5", "batch_size": 1,
    "batch_threshold": 0.75, "split_bucket": True, "speed_factor": 1.0, "fragment_interval": 0.3, "seed": -1,
    "media_type": "wav", "streaming_mode": False, "parallel_infer": True, "repetition_penalty": 1.35,
    "sample_steps": 32, "super_sampling": False, "overlap_length": 2, "min_chunk_length": 16,
}
LANGUAGES = {
    "v1": ["auto", "en", "zh", "ja", "all_zh", "all_ja"],
    "v2": ["auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko"],
}
V1_LANGUAGES = {"en", "zh", "ja", "ko", "yue", "auto", "auto_yue", "all_zh", "all_ja", "all_ko", "all_yue",
                "中文", "粤语", "英文", "日文", "韩文", "中英混合", "粤英混合", "日英混合", "韩英混合", "多语种混合", "多语种混合(粤语)"}
RATES = {"v1": 32000, "v2": 32000, "v3": 24000, "v4": 48000}
OUT_OF_RANGE = "Reference audio is outside the 3-10 second range, please choose another one!"
PUNCTUATION = ",.;?!、，。？！;：…"


@dataclass
class FakeOptions:
    api: str = "v2"  # "v2": api_v2.py, "v1": api.py
    model_version: str = "v2"
    visible_root: Path | None = None  # only files under it exist "on the server's machine"
    delay: float = 0.0  # seconds of "inference" before answering a synthesis request
    seconds_per_char: float = 0.06
    default_refer: tuple[str, str, str] = ("", "", "")  # api.py -dr -dt -dl


@dataclass
class FakeState:
    options: FakeOptions
    requests: list[dict[str, Any]] = field(default_factory=list)  # every synthesis request, as received
    on_exit: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class SynthesisError(Exception):
    pass


# -- the "model" ------------------------------------------------------------------------------
def load_reference(path: str, options: FakeOptions, rate: int) -> np.ndarray:
    """The reference as float mono at ``rate``, or the error the real server's loader raises."""
    file = Path(path)
    # another machine sees only its own folders (paths compared as written: a share is another name)
    if options.visible_root is not None and not Path(os.path.abspath(file)).is_relative_to(os.path.abspath(options.visible_root)):
        raise SynthesisError(f"[Errno 2] No such file or directory: '{path}'")
    if not file.is_file():
        raise SynthesisError(f"[Errno 2] No such file or directory: '{path}'")
    try:
        import soundfile

        data, source_rate = soundfile.read(str(file), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's own errors, as librosa would surface them
        raise SynthesisError(f"Error opening '{path}': {exc}") from exc
    mono = data.mean(axis=1)
    if not 3.0 <= len(mono) / source_rate <= 10.0:
        raise SynthesisError(OUT_OF_RANGE)
    positions = np.arange(int(len(mono) * rate / source_rate)) * source_rate / rate
    return np.interp(positions, np.arange(len(mono)), mono).astype(np.float32)


def split_text(text: str, method: str) -> list[str]:
    """Fragments as GPT-SoVITS' text_split_method roughly makes them."""
    text = text.strip()
    if method in ("cut0", "cut1", "cut2"):
        return [text] if text else []
    marks = {"cut3": "。", "cut4": "."}.get(method, PUNCTUATION)
    parts = re.split(f"(?<=[{re.escape(marks)}])(?!\\d)", text)
    return [p.strip() for p in parts if p.strip() and not all(c in PUNCTUATION for c in p.strip())]


def speak(fragment: str, reference: np.ndarray, options: FakeOptions, rate: int, speed: float, interval: float) -> np.ndarray:
    seconds = max(0.3, len(fragment) * options.seconds_per_char) / max(speed, 0.1)
    count = int(seconds * rate)
    voice = np.resize(reference, count) if count else np.zeros(0, np.float32)
    audio = np.concatenate([voice, np.zeros(int(interval * rate), np.float32)])
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        audio /= peak
    return (audio * 32767).astype(np.int16)


def wav_file(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


# -- HTTP -------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self._route("GET", url.path, query)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.json(422, {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}]})
        if not isinstance(body, dict):
            return self.json(422, {"detail": [{"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary"}]})
        self._route("POST", urlsplit(self.path).path, body)

    def _route(self, method: str, path: str, params: dict[str, Any]) -> None:
        state = self.server.state
        api = state.options.api
        if path == "/control":
            return self.control(params.get("command"))
        if api == "v2" and path == "/tts":
            return self.tts_v2(params, from_query=method == "GET")
        if api == "v2" and path in ("/set_gpt_weights", "/set_sovits_weights") and method == "GET":
            return self.set_weights(path, params.get("weights_path"))
        if api == "v2" and path == "/set_refer_audio" and method == "GET":
            return self.set_refer(params.get("refer_audio_path"))
        if api == "v1" and path == "/":
            return self.tts_v1(params)
        if api == "v1" and path == "/change_refer":
            if not any(params.get(k) for k in ("refer_wav_path", "prompt_text", "prompt_language")):
                return self.json(400, {"code": 400, "message": '缺少任意一项以下参数: "path", "text", "language"'})
            return self.json(200, {"code": 0, "message": "Success"})
        self.json(404, {"detail": "Not Found"})

    # api_v2 ----------------------------------------------------------------------------------
    def tts_v2(self, params: dict[str, Any], from_query: bool) -> None:
        options = self.server.state.options
        req = dict(V2_FIELDS)
        unknown_types = []
        for key, value in params.items():
            if key not in V2_FIELDS:
                continue
            default = V2_FIELDS[key]
            if isinstance(default, (int, float)) and not isinstance(default, bool) and key != "streaming_mode":
                try:
                    value = type(default)(value)
                except (TypeError, ValueError):
                    unknown_types.append({"type": "float_parsing" if isinstance(default, float) else "int_parsing",
                                          "loc": ["query" if from_query else "body", key],
                                          "msg": f"Input should be a valid {'number' if isinstance(default, float) else 'integer'}",
                                          "input": value})
                    continue
            if key == "streaming_mode" and isinstance(value, str):
                value = {"true": True, "false": False}.get(value.lower(), int(value) if value.isdigit() else value)
            req[key] = value
        if unknown_types:
            return self.json(422, {"detail": unknown_types})
        with self.server.state.lock:
            self.server.state.requests.append(dict(req))
        version = options.model_version
        languages = LANGUAGES["v1" if version == "v1" else "v2"]
        checks = [
            (req["ref_audio_path"] in (None, ""), "ref_audio_path is required"),
            (req["text"] in (None, ""), "text is required"),
            (req["text_lang"] in (None, ""), "text_lang is required"),
            (str(req["text_lang"]).lower() not in languages, f"text_lang: {req['text_lang']} is not supported in version {version}"),
            (req["prompt_lang"] in (None, ""), "prompt_lang is required"),
            (str(req["prompt_lang"]).lower() not in languages, f"prompt_lang: {req['prompt_lang']} is not supported in version {version}"),
            (req["media_type"] not in ("wav", "raw", "ogg", "aac"), f"media_type: {req['media_type']} is not supported"),
            (req["text_split_method"] not in [f"cut{i}" for i in range(6)], f"text_split_method:{req['text_split_method']} is not supported"),
        ]
        for failed, message in checks:
            if failed:
                return self.json(400, {"message": message})
        mode = req["streaming_mode"]
        if mode not in (0, 1, 2, 3):  # True == 1 and False == 0, as in the real check
            return self.json(400, {"message": "the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)"})
        rate = RATES[version]
        if options.delay:
            time.sleep(options.delay)
        if mode == 0:
            try:
                audio = self.synthesize(req, rate)
            except SynthesisError as exc:
                return self.json(400, {"message": "tts failed", "Exception": str(exc)})
            media = req["media_type"]
            if media == "aac":
                return self.json(400, {"message": "tts failed", "Exception": "[Errno 2] No such file or directory: 'ffmpeg'"})
            body = wav_file(audio.tobytes(), rate) if media == "wav" else audio.tobytes() if media == "raw" else self.ogg(audio, rate)
            return self.send_body(200, f"audio/{media}", body)
        self.start_chunked(f"audio/{req['media_type']}")
        try:
            pieces = self.synthesize_pieces(req, rate, mode)
            if req["media_type"] == "wav":
                self.chunk(wav_file(b"", rate))  # the header, with zero data length
            for piece in pieces:
                self.chunk(piece.tobytes())
        except SynthesisError as exc:  # like uvicorn after the response started: log it, drop the connection
            print(f"ERROR:    Exception in ASGI application: {exc}", flush=True)
            self.close_connection = True
            return
        self.end_chunked()

    def synthesize(self, req: dict[str, Any], rate: int) -> np.ndarray:
        parts = list(self.synthesize_pieces(req, rate, 0))
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def synthesize_pieces(self, req: dict[str, Any], rate: int, mode: int) -> list[np.ndarray]:
        options = self.server.state.options
        reference = load_reference(str(req["ref_audio_path"]), options, rate)
        fragments = split_text(str(req["text"]), str(req["text_split_method"]))
        audio = [speak(f, reference, options, rate, float(req["speed_factor"]), float(req["fragment_interval"])) for f in fragments]
        if mode in (2, 3):  # token-level streaming: smaller pieces than a sentence
            step = int(rate * 0.25)
            return [a[i : i + step] for a in audio for i in range(0, len(a), step)]
        return audio

    def control(self, command: Any) -> None:
        if command is None and self.server.state.options.api == "v2":
            return self.json(400, {"message": "command is required"})
        if command in ("restart", "exit"):
            print(f"INFO:     control: {command}", flush=True)
            self.server.state.on_exit(command)
        self.json(200, None)

    def set_weights(self, path: str, weights: Any) -> None:
        kind = "gpt" if "gpt" in path else "sovits"
        if weights in (None, ""):
            return self.json(400, {"message": f"{kind} weight path is required"})
        if not Path(weights).is_file():
            return self.json(400, {"message": f"change {kind} weight failed", "Exception": f"[Errno 2] No such file or directory: '{weights}'"})
        self.json(200, {"message": "success"})

    def set_refer(self, path: Any) -> None:
        try:
            load_reference(str(path), self.server.state.options, 16000)
        except SynthesisError as exc:
            return self.json(400, {"message": "set refer audio failed", "Exception": str(exc)})
        self.json(200, {"message": "success"})

    # api.py (v1) -------------------------------------------------------------------------------
    def tts_v1(self, params: dict[str, Any]) -> None:
        options = self.server.state.options
        with self.server.state.lock:
            self.server.state.requests.append(dict(params))
        ref, prompt, prompt_lang = (params.get(k) for k in ("refer_wav_path", "prompt_text", "prompt_language"))
        if not ref or not prompt or not prompt_lang:
            ref, prompt, prompt_lang = options.default_refer
            if not (ref and prompt and prompt_lang):
                return self.json(400, {"code": 400, "message": "未指定参考音频且接口无预设"})
        rate = RATES[options.model_version]
        self.start_chunked("audio/wav")  # StreamingResponse: headers go out before synthesis
        try:
            if options.delay:
                time.sleep(options.delay)
            for lang in (prompt_lang, params.get("text_language")):
                if str(lang).lower() not in V1_LANGUAGES:
                    raise SynthesisError(f"KeyError: {lang!r}")
            reference = load_reference(str(ref), options, rate)
            speed = float(params.get("speed", 1.0))
            lines = [line for line in str(params.get("text") or "").split("\n") if line.strip()]
            audio = [speak(line, reference, options, rate, speed, 0.3) for line in lines]
        except (SynthesisError, ValueError) as exc:
            print(f"ERROR:    Exception in ASGI application: {exc}", flush=True)
            self.close_connection = True
            return
        pcm = np.concatenate(audio).tobytes() if audio else b""
        self.chunk(wav_file(pcm, rate))
        self.end_chunked()

    # plumbing ----------------------------------------------------------------------------------
    def ogg(self, audio: np.ndarray, rate: int) -> bytes:
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, audio, rate, format="OGG")
        return buffer.getvalue()

    def json(self, status: int, body: Any) -> None:
        self.send_body(status, "application/json", json.dumps(body, ensure_ascii=False).encode())

    def send_body(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start_chunked(self, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def setup(self) -> None:
        super().setup()
        # uvicorn's asyncio transports disable Nagle; without this, a small write after another
        # would wait for the client's delayed ACK (~40 ms)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.state.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.state.lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        print(f'INFO:     {self.client_address[0]}:{self.client_address[1]} - {format % args}', flush=True)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: FakeState) -> None:
        self.state = state
        self.connections: set[socket.socket] = set()
        super().__init__(address, Handler)

    def drop_connections(self) -> None:
        """What a process exit does to its kept-alive connections."""
        with self.state.lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeSovits:
    """The fake in a thread of the test process, on a free port."""

    def __init__(self, options: FakeOptions | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = FakeState(options or FakeOptions(), on_exit=lambda command: threading.Thread(target=self.stop).start())
        self.server = FakeServer((host, port), self.state)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def options(self) -> FakeOptions:
        return self.state.options

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.requests)

    def start(self) -> FakeSovits:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.drop_connections()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GPT-SoVITS api stand-in")
    parser.add_argument("-a", "--bind_addr", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=9880)
    parser.add_argument("-c", "--tts_config", default="GPT_SoVITS/configs/tts_infer.yaml")
    parser.add_argument("--api", choices=["v1", "v2"], default="v2")
    parser.add_argument("--model-version", choices=sorted(RATES), default="v2")
    parser.add_argument("--visible-root", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds of 'model loading' before listening")
    parser.add_argument("--exit-at-start", type=int, help="exit with this code instead of serving (broken install)")
    args = parser.parse_args(argv)
    print(f"TTS config: {args.tts_config}; fake GPT-SoVITS {args.api} api, model {args.model_version}", flush=True)
    if args.exit_at_start is not None:
        print("FileNotFoundError: GPT_SoVITS/pretrained_models is empty", flush=True)
        return args.exit_at_start
    time.sleep(args.startup_delay)
    options = FakeOptions(api=args.api, model_version=args.model_version, visible_root=args.visible_root, delay=args.delay)

    def on_exit(command: str) -> None:
        if command == "restart":
            os.execv(sys.executable, [sys.executable, *sys.argv])
        os.kill(os.getpid(), signal.SIGTERM)

    server = FakeServer((args.bind_addr, args.port), FakeState(options, on_exit=on_exit))
    signal.signal(signal.SIGTERM, lambda *_: (print("INFO:     Shutting down", flush=True), os._exit(0)))
    print(f"INFO:     Uvicorn running on http://{args.bind_addr}:{args.port} (Press CTRL+C to quit)", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
