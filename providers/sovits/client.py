"""HTTP to a GPT-SoVITS server: one request per utterance, audio out as it arrives, every
failure turned into a message that says what to do.

api_v2 (``POST /tts``) answers a whole WAV, or with ``streaming_mode`` a WAV header with zero
data length followed by raw int16 PCM, one HTTP chunk per piece the server finished. Each HTTP
chunk becomes one ``AudioChunk``, so with streaming_mode 1 the agent streams sentence by
sentence. The v1 ``api.py`` (``POST /``) answers one WAV.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from providers.base import AudioChunk, ProviderError, ProviderUnavailableError
from providers.sovits.config import SovitsSettings

MAX_ERROR_BODY = 64 * 1024
MIN_PIECE_SECONDS = 0.5  # when the answer is not chunked, hand on audio in pieces at least this long
READ_SIZE = 256 * 1024
SERVER_LOG = "logs/run/sovits-server.log"


@dataclass(frozen=True)
class TtsRequest:
    path: str
    body: dict[str, object]


def build_request(text: str, settings: SovitsSettings, ref_path: str, transcript: str) -> TtsRequest:
    """The request body for the configured API version."""
    if settings.api_version == "v1":
        return TtsRequest("/", {
            "refer_wav_path": ref_path,
            "prompt_text": transcript,
            "prompt_language": settings.prompt_lang,
            "text": text,
            "text_language": settings.text_lang,
            "top_k": settings.top_k,
            "top_p": settings.top_p,
            "temperature": settings.temperature,
            "speed": settings.speed,
        })
    return TtsRequest("/tts", {
        "text": text,
        "text_lang": settings.text_lang,
        "ref_audio_path": ref_path,
        "prompt_text": transcript,
        "prompt_lang": settings.prompt_lang,
        "top_k": settings.top_k,
        "top_p": settings.top_p,
        "temperature": settings.temperature,
        "speed_factor": settings.speed,
        "text_split_method": settings.text_split_method,
        "media_type": "wav",
        "streaming_mode": settings.streaming_mode,
    })


class SovitsClient:
    """Keeps one keep-alive connection per thread and server (each profile speaks on its own
    thread), so a request costs no TCP handshake and one slow profile never holds another's socket."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def speak(self, settings: SovitsSettings, request: TtsRequest) -> Iterator[AudioChunk]:
        deadline = time.monotonic() + settings.timeout
        conn, sock, response = self._send(settings, request, deadline)
        complete = False
        try:
            if response.status != 200:
                raise _error_from(response, settings, _read_body(response, sock, deadline))
            yield from _audio(response, sock, settings, deadline)
            complete = True
        except TimeoutError as exc:
            raise _too_slow(settings) from exc
        except (http.client.HTTPException, OSError, ValueError) as exc:
            advice = "" if settings.api_version == "v1" else ", or set tts.sovits.streamingMode to 0 to get its error message"
            raise ProviderError(
                f"GPT-SoVITS server at {settings.base_url} broke off its answer ({type(exc).__name__}); it gives no reason "
                f"once it has started answering: see {SERVER_LOG} (or its console){advice}"
            ) from exc
        finally:
            response.close()  # read to the end: the connection stays open for the next request
            if not complete or response.will_close:
                conn.close()

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()

    # -- sending ---------------------------------------------------------------------------
    def _connection(self, settings: SovitsSettings) -> http.client.HTTPConnection:
        pool: dict[tuple[str, int], http.client.HTTPConnection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (settings.host, settings.port)
        conn = pool.get(key)
        if conn is None:
            factory = http.client.HTTPSConnection if settings.server_url.scheme == "https" else http.client.HTTPConnection
            conn = factory(settings.host.strip("[]"), settings.port, timeout=settings.connect_timeout)
            pool[key] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _send(
        self, settings: SovitsSettings, request: TtsRequest, deadline: float
    ) -> tuple[http.client.HTTPConnection, socket.socket, http.client.HTTPResponse]:
        conn = self._connection(settings)
        body = json.dumps(request.body).encode()
        headers = {"Content-Type": "application/json", "Accept": "audio/wav, application/json"}
        for attempt in (1, 2):
            reused = conn.sock is not None
            connected = reused
            try:
                if not reused:
                    conn.timeout = min(settings.connect_timeout, _remaining(deadline))
                    conn.connect()
                    connected = True
                sock = conn.sock
                sock.settimeout(_remaining(deadline))
                conn.request("POST", request.path, body, headers)
                return conn, sock, conn.getresponse()
            except ConnectionRefusedError as exc:
                conn.close()
                raise ProviderUnavailableError(
                    f"GPT-SoVITS server at {settings.base_url} is not running (connection refused): start it with "
                    "`voice-agent sovits start`, or set tts.sovits.autoStart to true"
                ) from exc
            except TimeoutError as exc:
                conn.close()
                if connected:
                    raise _too_slow(settings) from exc
                raise ProviderUnavailableError(
                    f"GPT-SoVITS server at {settings.base_url} did not accept a connection within "
                    f"{settings.connect_timeout:g} s (tts.sovits.connectTimeout): is the address right and the machine up?"
                ) from exc
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()  # a kept-alive socket the server had already closed: once more on a fresh one
                if not reused or attempt == 2:
                    raise ProviderUnavailableError(
                        f"GPT-SoVITS server at {settings.base_url} closed the connection without answering: {exc}"
                    ) from exc
            except OSError as exc:
                conn.close()
                raise ProviderUnavailableError(f"cannot reach the GPT-SoVITS server at {settings.base_url}: {exc}") from exc
        raise AssertionError("unreachable")


def _too_slow(settings: SovitsSettings) -> ProviderError:
    return ProviderError(
        f"GPT-SoVITS server at {settings.base_url} did not finish within {settings.timeout:g} s "
        "(tts.sovits.timeout): it is overloaded, still loading, or the text is too long for it"
    )


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _read_body(response: http.client.HTTPResponse, sock: socket.socket, deadline: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < MAX_ERROR_BODY:
        sock.settimeout(_remaining(deadline))
        piece = response.read1(MAX_ERROR_BODY - size)
        if not piece:
            break
        parts.append(piece)
        size += len(piece)
    return b"".join(parts)


def _error_from(response: http.client.HTTPResponse, settings: SovitsSettings, body: bytes) -> ProviderError:
    """The server's own words: api_v2 {"message", "Exception"?}, v1 {"code", "message"}, FastAPI {"detail"}."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    where = f"GPT-SoVITS server at {settings.base_url}"
    if response.status == 404:
        other = "v1" if settings.api_version == "v2" else "v2"
        return ProviderUnavailableError(
            f"{where} has no {'POST /tts' if settings.api_version == 'v2' else 'POST /'} (HTTP 404): it looks like "
            f"the {other} API ({'api.py' if other == 'v1' else 'api_v2.py'}); set tts.sovits.apiVersion to \"{other}\""
        )
    if isinstance(document, dict):
        message = str(document.get("message") or "").strip()
        exception = str(document.get("Exception") or "").strip()
        if message == "tts failed" or exception:
            hint = ""
            if settings.reference_transfer == "path" and any(w in exception.lower() for w in ("no such file", "not found", "not exist")):
                hint = (" — the server cannot open the reference audio; if it runs on another machine, share the folder "
                        "(tts.sovits.pathMap) or upload it (tts.sovits.referenceTransfer \"upload\")")
            return ProviderError(f"{where} could not synthesize: {exception or message}{hint}")
        if message:
            return ProviderError(f"{where} refused the request: {message}")
        detail = document.get("detail")
        if isinstance(detail, list):
            fields = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail if isinstance(d, dict))
            return ProviderError(f"{where} refused the request (HTTP {response.status}): {fields}")
        if detail:
            return ProviderError(f"{where} refused the request (HTTP {response.status}): {detail}")
    text = body.decode("utf-8", "replace").strip()[:300] or response.reason
    return ProviderError(f"{where} answered HTTP {response.status}: {text}")


def _audio(
    response: http.client.HTTPResponse, sock: socket.socket, settings: SovitsSettings, deadline: float
) -> Iterator[AudioChunk]:
    kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if kind and kind not in ("audio/wav", "audio/x-wav", "audio/wave", "audio/raw", "audio/x-raw", "application/octet-stream"):
        raise ProviderError(
            f"GPT-SoVITS server at {settings.base_url} answered {kind}, not WAV"
            + (": start api.py without -sm/-mt so it answers WAV" if settings.api_version == "v1" else "")
        )
    chunked = bool(getattr(response, "chunked", False)) and hasattr(response, "chunk_left")
    header = bytearray()
    rate = 0
    remaining: int | None = None  # data bytes still expected; None = until the end (streaming)
    pending = bytearray()  # PCM not yet handed on (an odd byte, or a short non-chunked piece)
    while True:
        sock.settimeout(_remaining(deadline))
        piece = response.read1(READ_SIZE)
        if not piece:
            break
        if rate == 0:
            header += piece
            parsed = _parse_wav_header(bytes(header), settings)
            if parsed is None:
                continue
            rate, offset, size = parsed
            remaining = size if size not in (0, 0xFFFFFFFF) else None
            piece = bytes(header[offset:])
            header.clear()
        if remaining is not None:
            piece = piece[:remaining]
            remaining -= len(piece)
        pending += piece
        # http.client's chunk_left is 0 exactly at the end of an HTTP chunk: one piece from the server.
        at_boundary = chunked and response.chunk_left == 0
        streaming = remaining is None
        if (at_boundary or (streaming and not chunked and len(pending) >= rate * 2 * MIN_PIECE_SECONDS)) and len(pending) >= 2:
            even = len(pending) - len(pending) % 2
            yield AudioChunk(pcm=bytes(pending[:even]), sample_rate=rate)
            del pending[:even]
    if rate == 0:
        raise ProviderError(f"GPT-SoVITS server at {settings.base_url} answered without audio (no WAV header)")
    if remaining:
        raise ProviderError(f"GPT-SoVITS server at {settings.base_url} sent a truncated WAV ({remaining} bytes missing)")
    if len(pending) >= 2:
        yield AudioChunk(pcm=bytes(pending[: len(pending) - len(pending) % 2]), sample_rate=rate)


def _parse_wav_header(data: bytes, settings: SovitsSettings) -> tuple[int, int, int] | None:
    """(sample rate, offset of the PCM, data size) once the header is complete, else None."""
    if len(data) < 12:
        return None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ProviderError(f"GPT-SoVITS server at {settings.base_url} answered something that is not a WAV")
    pos, rate = 12, 0
    while len(data) >= pos + 8:
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk_id == b"data":
            if rate == 0:
                raise ProviderError(f"GPT-SoVITS server at {settings.base_url} sent a WAV without a format chunk")
            return rate, pos + 8, size
        if len(data) < pos + 8 + size:
            return None
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
            if fmt not in (1, 0xFFFE) or channels != 1 or bits != 16:
                raise ProviderError(
                    f"GPT-SoVITS server at {settings.base_url} sent {bits}-bit, {channels}-channel audio (format {fmt}); "
                    "the agent needs 16-bit mono PCM (for api.py: drop -st int32)"
                )
        pos += 8 + size + (size & 1)
    return None
