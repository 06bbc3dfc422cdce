"""The API this agent offers households' chat bots and web pages (the shape of the API it
replaces): ``POST /api/tts`` text in, audio out as it is made (WAV, or the ``format`` or ``Accept``
asks: ``accept.py``); ``WS /api/tts-stream`` one file per sentence (the message's ``format``) as it is made; ``GET /api/voices``, ``GET /api/health``; and every command of the command table at
``POST /api/profiles/<profile>/commands/<command>`` (what the web page uses), and a voice file
uploaded to ``POST /api/profiles/<profile>/voices/import``. For the page, too:
``GET /api/events`` (the core's events as server-sent events), a sample's WAV and the samples'
report picture; the page itself at ``/`` (``page.py``). The household's nodes and the files
this node keeps for them (``nodes.py``).

Each handler parses, calls one entry of the command table and answers; the errors are the
services' codes with an HTTP status (``errors.py``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aiohttp import WSMsgType, web

from agent import __version__
from agent.commands import Handler as CommandHandler
from agent.commands import check_profile, find, reserve, validate
from agent.core import Core
from agent.errors import ServiceError
from agent.http import stream, streamed_tts
from agent.http.accept import format_of
from agent.http.bodies import announced, read_body
from agent.http.connections import connection_of
from agent.http.errors import error_response
from agent.http.guard import Guard, Handler
from agent.http.nodes import NodesDoor
from agent.http.openai import OpenAIDoor
from agent.http.page import Page
from agent.http.uploads import import_document, receive
from agent.record.report import report_files
from agent.requests import json_object
from agent.speak.departure import ClientAudio, Departure
from agent.speak.handoff import DONE, LoopAudio
from agent.speak.encoding import audio_format
from agent.settings import AgentSettings
from providers.base import ProviderError
from providers.common.audio import read_wav_pcm, wav_bytes

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "default"
_GOODBYES = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)  # what ends a WebSocket (as ``async for``)


class CollectedAudio(ClientAudio):
    """The whole utterance, for one HTTP answer (WAV sentences joined when they came one by one:
    the commands' default out, which never asks for another format)."""

    def __init__(self, departure: Departure | None = None) -> None:
        super().__init__(departure or Departure("the HTTP client", "http"))
        self.parts: list[bytes] = []

    def deliver(self, wav: bytes) -> None:
        self.parts.append(wav)

    def whole(self, request_id: str, wav: bytes) -> None:
        self.parts = [wav]

    def where(self, request_id: str, stream: bool) -> str:
        return "http"

    def audio(self) -> bytes:
        if len(self.parts) == 1:
            return self.parts[0]
        pieces = [read_wav_pcm(part) for part in self.parts]
        return wav_bytes(b"".join(pcm for pcm, _ in pieces), pieces[0][1] if pieces else 22050)


class Api:
    def __init__(self, core: Core, settings: AgentSettings) -> None:
        self._core = core
        self._settings = settings
        self._page = Page()
        token = settings.http_token.get_secret_value() if settings.http_token is not None else None
        self._guard = Guard(token, settings.http_port, self._page.is_page)
        self._hub = stream.EventHub(core.events, core.state)
        self._openai = OpenAIDoor(self.call, settings.max_request_bytes)
        self._nodes = NodesDoor(core.nodes, core.find_blob, token is not None)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._settings.max_audio_bytes,
                              middlewares=[self._openai.errors, self._errors, self._guard.origin, self._guard.token])
        app.add_routes([
            *self._page.routes(),
            web.post("/api/tts", self.tts),
            web.get("/api/tts-stream", self.tts_stream),
            web.get("/api/voices", self.voices),
            web.get("/api/health", self.health),
            web.get("/api/events", self.events),
            web.post("/api/profiles/{profile}/commands/{command}", self.command),
            web.post("/api/profiles/{profile}/voices/import", self.import_voice),
            web.get("/api/profiles/{profile}/samples/report.png", self.report_png),
            web.get("/api/profiles/{profile}/samples/{sample}/audio", self.sample_audio),
            *self._openai.routes(),
            *self._nodes.routes(),
        ])
        app.on_startup.append(self._started)
        app.on_shutdown.append(self._shutting_down)
        return app

    async def _started(self, app: web.Application) -> None:
        self._hub.attach(asyncio.get_running_loop())

    async def _shutting_down(self, app: web.Application) -> None:
        self._hub.close_all()

    # -- the core, from the event loop -------------------------------------------------------------
    async def call(self, profile: str, name: str, document: dict[str, Any], out: Any = None,
                   run: CommandHandler | None = None) -> dict[str, Any]:
        """One command of the table (``run``: as its reservation starts it); its validation and start
        run off the loop, its answer is awaited."""
        def start() -> Any:
            command = find(self._core.commands, name)
            check_profile(profile, self._core.layout.exists)
            return (run or command.run)(profile, validate(command, document), out or CollectedAudio())

        result = await asyncio.get_running_loop().run_in_executor(None, start)
        if isinstance(result, Future):
            return await asyncio.wrap_future(result)
        return dict(result)

    # -- middlewares --------------------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (ServiceError, ProviderError) as exc:
            level = logging.INFO if exc.code == "client_gone" else logging.WARNING  # a client's choice, not a fault
            log.log(level, "HTTP %s %s refused: %s: %s", request.method, request.path, exc.code, exc)
            return error_response(exc.code, str(exc), getattr(exc, "data", None))
        except web.HTTPRequestEntityTooLarge:
            return error_response("payload_too_large", f"the body is larger than {self._settings.max_audio_bytes} bytes")
        except web.HTTPException:
            raise
        except ConnectionResetError:  # the client went away while its body came or its answer went
            log.info("HTTP %s %s: the client went away", request.method, request.path)
            return error_response("invalid_payload", "the connection was lost")
        except Exception as exc:
            log.exception("HTTP %s %s failed", request.method, request.path)
            return error_response("internal_error", f"{type(exc).__name__}: {exc}")

    # -- routes -------------------------------------------------------------------------------------
    async def tts(self, request: web.Request) -> web.StreamResponse:
        """The audio as it is made (``streamed_tts``), or with ``"stream": false`` whole at the end
        with the summary's headers; in the format the body or ``Accept`` names (``accept.py``)."""
        document = await self._json(request)
        profile = str(document.pop("profile", DEFAULT_PROFILE))
        document["format"] = format_of(document, request.headers.get("Accept"))
        departure = Departure("the HTTP client", str(request.remote), connection_of(request))
        if document.get("stream", True) is not False:
            streamed = streamed_tts.EncodedStream(asyncio.get_running_loop(), departure)
            answer = asyncio.ensure_future(self.call(profile, "speak", {**document, "stream": True}, streamed))
            return await streamed_tts.serve(request, answer, streamed, audio_format(document["format"]).media_type)
        out = CollectedAudio(departure)
        summary = await self.call(profile, "speak", document, out)
        headers = {
            "X-Request-Id": str(summary["id"]), "X-Provider": str(summary["provider"]), "X-Voice": str(summary["voice"]),
            "X-Cached": json.dumps(summary["cached"]), "X-Fallback": json.dumps(summary["fallback"]),
            "X-Audio-Seconds": str(summary["audio_seconds"]), "X-Latency-Ms": str(summary["latency_ms"]),
        }
        if summary.get("fallback_code"):  # the code, as a header can carry it (the reason's text may not be ASCII)
            headers["X-Fallback-Reason"] = str(summary["fallback_code"])
        return web.Response(body=out.audio(), content_type=str(summary["content_type"]), headers=headers)

    async def tts_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=self._settings.max_request_bytes)
        await ws.prepare(request)
        departure = Departure("the WebSocket client", str(request.remote), connection_of(request))
        incoming = asyncio.ensure_future(ws.receive())
        try:
            while (message := await incoming).type not in _GOODBYES:
                # the next message is read while this one is answered: a close frame mid-stream is
                # answered at once, the connection closes and the speech stops (``Departure``)
                incoming = asyncio.ensure_future(ws.receive())
                if message.type != WSMsgType.TEXT:
                    await ws.send_json({"done": True, "code": "invalid_payload", "error": "send a JSON text frame"})
                    continue
                await self._speak_to(ws, message.data, departure)
        except ConnectionResetError:  # nobody to tell: its speech stops before its next sentence
            log.info("WebSocket client left mid-stream (%s)", request.remote)
        finally:
            departure.leave()
            incoming.cancel()
        return ws

    async def _speak_to(self, ws: web.WebSocketResponse, text: str, departure: Departure) -> None:
        """One request of the stream: its sentences as binary frames, then ``{"done": true, ...}``."""
        try:
            document = json_object(text, "message")
        except ServiceError as exc:
            await ws.send_json({"done": True, "code": exc.code, "error": str(exc)})
            return
        profile = str(document.pop("profile", DEFAULT_PROFILE))
        out = LoopAudio(asyncio.get_running_loop(), departure, "websocket")  # each sentence's file, as it is made
        answer = asyncio.ensure_future(self.call(profile, "speak", {**document, "stream": True}, out))
        answer.add_done_callback(lambda done: done.cancelled() or done.exception())  # read even when the client left
        answer.add_done_callback(out.finished)
        while (sentence := await out.queue.get()) is not DONE:
            await ws.send_bytes(sentence)
        try:
            summary = answer.result()
        except (ServiceError, ProviderError) as exc:
            await ws.send_json({"done": True, "id": document.get("id"), "code": exc.code, "error": str(exc)})
            return
        except Exception as exc:
            log.exception("WebSocket speak failed")
            await ws.send_json({"done": True, "id": document.get("id"), "code": "internal_error", "error": str(exc)})
            return
        await ws.send_json({"done": True, **summary})

    async def events(self, request: web.Request) -> web.StreamResponse:
        profile = request.query.get("profile", DEFAULT_PROFILE)
        check_profile(profile, self._core.layout.exists)
        return await stream.serve(request, self._hub, profile)

    async def sample_audio(self, request: web.Request) -> web.StreamResponse:
        """A kept sample's WAV: the id is checked by ``samples.show``, the file is the one it names."""
        shown = await self.call(request.match_info["profile"], "samples.show", {"sample": request.match_info["sample"]})
        return web.FileResponse(shown["path"], headers={"Content-Type": "audio/wav", "Cache-Control": "no-cache"})

    async def report_png(self, request: web.Request) -> web.StreamResponse:
        """The picture the last ``samples.report`` drew."""
        profile = request.match_info["profile"]
        check_profile(profile, self._core.layout.exists)
        png, _ = report_files(self._core.layout.reports_dir(profile))
        if not png.is_file():
            raise ServiceError("no_report", f"no report of {profile!r} yet: run samples.report")
        return web.FileResponse(png, headers={"Content-Type": "image/png", "Cache-Control": "no-cache"})

    async def voices(self, request: web.Request) -> web.Response:
        """``?catalog=false`` installed ones only; ``provider``, ``language`` narrow the list (the
        command's model checks them)."""
        query = request.query
        profile = query.get("profile", DEFAULT_PROFILE)
        wanted: dict[str, Any] = {key: query[key] for key in ("provider", "language") if key in query}
        if "catalog" in query:
            wanted["catalog"] = query["catalog"]  # "true"/"false"/"1"/"0": pydantic reads them
        return web.json_response(await self.call(profile, "voices", wanted))

    async def health(self, request: web.Request) -> web.Response:
        core = self._core
        profiles = core.layout.names()
        problems = core.problems()
        return web.json_response({
            "status": core.availability(problems), "version": __version__, "problems": problems,
            "profiles": profiles, "providers_loaded": core.engines.loaded(),
            "readiness": {p: core.state.get(p).get("readiness", {}) for p in profiles},
            "gpu": core.state.get("gpu"), "memory": core.memory(),
        })

    async def command(self, request: web.Request) -> web.Response:
        name = request.match_info["command"]
        command = find(self._core.commands, name)
        if name == "speak":
            raise ServiceError("invalid_payload", "speak answers with audio: use POST /api/tts or the WebSocket /api/tts-stream")
        profile = request.match_info["profile"]
        if not command.audio_in:
            return web.json_response({"data": await self.call(profile, name, await self._json(request))})
        # a recording: refused, or its bytes held in the service's budget, before its body is read
        size = announced(request, self._settings.max_audio_bytes)
        room = reserve(self._core.commands, self._core.layout.exists, profile, name, size)
        try:
            body = await read_body(request, self._settings.max_audio_bytes, room.hold.grow)
            # a recording's JSON envelope may be as large as the recording (as over MQTT)
            audio = request.content_type.startswith("audio/")
            # raw audio takes its other fields (transcript, source) from the query string
            document = {**request.query, "audio": body} if audio else json_object(body, "body")
            document.setdefault("source", "http")  # the record path's default is the MQTT door's
            return web.json_response({"data": await self.call(profile, name, document, run=room.run)})
        finally:
            room.hold.release()  # nothing, once its job took the bytes over

    async def import_voice(self, request: web.Request) -> web.Response:
        """A voice file uploaded as a form (``uploads.py``), imported by ``voices.import``; the
        upload is deleted once imported or refused. Before its body is read: access, the one
        import slot (``busy``) and the disk's room for its length (``core.reserve_upload``)."""
        profile = request.match_info["profile"]
        check_profile(profile, self._core.layout.exists)
        limit = self._settings.voice_import_max_mb * 1024 * 1024
        loop = asyncio.get_running_loop()
        room = await loop.run_in_executor(None, self._core.reserve_upload, profile, announced(request, limit))
        try:
            upload = await receive(request, self._core.layout.uploads_dir, limit, room.take)
            try:
                document = import_document(upload)
                return web.json_response({"data": await self.call(
                    profile, "voices.import", document, run=lambda p, r, out: self._core.import_voices(p, r, upload=True))})
            finally:
                await loop.run_in_executor(None, upload.discard)
        finally:
            self._core.import_slot.release()

    async def _json(self, request: web.Request) -> dict[str, Any]:
        return json_object(await read_body(request, self._settings.max_request_bytes), "body")

