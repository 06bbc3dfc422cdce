"""The OpenAI-compatible door, on the HTTP door's server and behind its guard: what chat bots that
speak OpenAI's speech API send (Open WebUI, LibreChat, the ``openai`` client).

``POST /v1/audio/speech`` is the core's ``speak`` command: the body is read by ``SpeechBody``, the
voice and model become the speak request's profile, provider and voice (agent/voices/picks.py, with
the profile's ``openai.voices`` table from the ``config`` command), and the audio leaves encoded
(agent/speak/encoding.py) as each sentence is made: raw bytes, or server-sent events
(``speech.audio.delta`` then ``speech.audio.done``). ``GET /v1/models`` and ``GET /v1/audio/voices``
list what ``model`` and ``voice`` take. Every refusal is OpenAI's error shape,
``{"error": {"message", "type", "param", "code"}}``, with the agent's code and its HTTP status
(``errors.py``): a refusal known before the first sound is a proper answer; one after it (the
provider failed mid-text) ends a raw stream unfinished and an event stream with an ``error`` event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ServiceError
from agent.http.bodies import read_body
from agent.http.connections import connection_of
from agent.http.errors import status_of
from agent.http.guard import Handler
from agent.requests import describe_validation_error, json_object, validation_problems
from agent.http.streamed_tts import EncodedStream
from agent.speak.departure import Departure
from agent.speak.handoff import DONE
from agent.speak.encoding import audio_format
from agent.voices.picks import OPENAI_MODELS, OPENAI_VOICES, openai_pick, profile_of, voice_name, with_model
from providers import registry
from providers.base import ProviderError

log = logging.getLogger(__name__)

PREFIX = "/v1/"
Call = Callable[..., Awaitable[dict[str, Any]]]  # Api.call: (profile, command, document, out) -> answer


class SpeechBody(BaseModel):
    """``POST /v1/audio/speech``'s JSON, as OpenAI documents it. Unknown fields are ignored (OpenAI
    adds some now and then; a client sending one must not break), known ones are checked."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=64)
    input: str = Field(min_length=1, max_length=4096)
    voice: str = Field(min_length=1, max_length=200)
    instructions: str | None = Field(None, max_length=4096, description="Accepted; no provider here reads it.")
    response_format: str = Field("mp3", max_length=16)
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


def speak_document(body: SpeechBody, table: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The profile and the ``speak`` request an OpenAI request means. Speed 1.0 is the profile's own
    speed (voice.json); any other is sent on, and the speak command refuses what its voices cannot
    say (outside 0.5–2.0) with the field named."""
    pick = with_model(openai_pick(body.voice, table), body.model)
    document: dict[str, Any] = {"text": body.input, "stream": True, "format": audio_format(body.response_format).name}
    if pick.provider is not None:
        document["provider"] = pick.provider
    if pick.voice is not None:
        document["voice"] = pick.voice
    if body.speed != 1.0:
        document["speed"] = body.speed
    return pick.profile, document


class OpenAIDoor:
    """The ``/v1`` routes and the middleware that gives every ``/v1`` refusal OpenAI's shape."""

    def __init__(self, call: Call, max_body: int) -> None:
        """``call``: the command table, as the HTTP door calls it; ``max_body``: the largest JSON body."""
        self._call = call
        self._max_body = max_body

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/audio/speech", self.speech),
            web.get("/v1/models", self.models),
            web.get("/v1/audio/voices", self.voices),
        ]

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Outermost: the agent's ``{"error", "code"}`` answers (the guard's, the error middleware's)
        and aiohttp's own (404, 405) become OpenAI's shape on ``/v1`` paths."""
        if not request.path.startswith(PREFIX):
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return openai_error(exc.reason.lower().replace(" ", "_"), exc.reason, status=exc.status)
        if response.status < 400 or not isinstance(response, web.Response) or response.content_type != "application/json":
            return response
        try:
            agent = json.loads(response.body)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return response
        if not isinstance(agent, dict) or not isinstance(agent.get("error"), str):
            return response
        reshaped = openai_error(str(agent.get("code", "error")), agent["error"], agent.get("data"), status=response.status)
        for name in ("Retry-After", "WWW-Authenticate"):
            if name in response.headers:
                reshaped.headers[name] = response.headers[name]
        return reshaped

    # -- routes -------------------------------------------------------------------------------------
    async def speech(self, request: web.Request) -> web.StreamResponse:
        body = parse(json_object(await read_body(request, self._max_body), "body"))
        media_type = audio_format(body.response_format).media_type  # ``aac`` and the unknown: refused here
        profile = profile_of(body.voice)
        config = await self._call(profile, "config", {})
        profile, document = speak_document(body, config["config"].get("openai", {}).get("voices", {}))
        departure = Departure("the OpenAI client", str(request.remote), connection_of(request))
        out = EncodedStream(asyncio.get_running_loop(), departure, "openai")  # encoded on the speak worker
        answer = asyncio.ensure_future(self._call(profile, "speak", document, out))
        answer.add_done_callback(ended)
        answer.add_done_callback(out.finished)
        first = await out.queue.get()
        if first is DONE and answer.exception() is not None:  # refused before a sound: a proper answer
            raise answer.exception()  # type: ignore[misc]
        sse = body.stream_format == "sse"
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream" if sse else media_type, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            chunk = first
            while chunk is not DONE:
                await self._send(response, chunk, sse)
                chunk = await out.queue.get()
            try:
                summary = answer.result()
            except (ServiceError, ProviderError) as exc:
                return await self._failed(request, response, exc.code, str(exc), sse)
            except Exception as exc:
                log.exception("OpenAI speech failed")
                return await self._failed(request, response, "internal_error", f"{type(exc).__name__}: {exc}", sse)
            if sse:
                chars = len(body.input)  # no tokens here: characters stand in for them
                usage = {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars}
                await response.write(event({"type": "speech.audio.done", "usage": usage}))
            await response.write_eof()
            log.info("OpenAI speech %s: %s %s, %s s of %s", summary.get("id"), summary.get("provider"),
                     summary.get("voice"), summary.get("audio_seconds"), summary.get("format"))
        except ConnectionResetError:
            departure.leave()
            log.info("OpenAI client left mid-stream (%s)", request.remote)
        return response

    async def _send(self, response: web.StreamResponse, chunk: bytes, sse: bool) -> None:
        if sse:
            await response.write(event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()}))
        else:
            await response.write(chunk)

    async def _failed(self, request: web.Request, response: web.StreamResponse, code: str, message: str,
                      sse: bool) -> web.StreamResponse:
        """A refusal after the first sound: an ``error`` event, or a raw stream cut before its end (a
        client reading it sees a truncated body, not a whole file that is short)."""
        log.warning("OpenAI speech failed mid-stream: %s: %s", code, message)
        if sse:
            await response.write(event({"type": "error", "error": error_body(code, message)}))
            await response.write_eof()
        elif request.transport is not None:
            request.transport.close()
        return response

    async def models(self, request: web.Request) -> web.Response:
        names = [*OPENAI_MODELS, *registry.NAMES]
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "voice-agent"} for name in names]})

    async def voices(self, request: web.Request) -> web.Response:
        """OpenAI's names with what each is in this profile, then every installed voice by the name
        ``voice`` takes (``[profile/]provider:voice``). ``?profile=`` picks the profile."""
        profile = request.query.get("profile", "default")
        config = await self._call(profile, "config", {})
        table: dict[str, str] = config["config"].get("openai", {}).get("voices", {})
        prefix = "" if profile == "default" else f"{profile}/"
        entries = [{"id": f"{prefix}{name}", "name": f"{name}: {table.get(name) or 'the profile’s own voice'}"}
                   for name in dict.fromkeys([*OPENAI_VOICES, *table])]
        installed = await self._call(profile, "voices", {"catalog": False})
        for voice in installed["voices"]:
            named = voice_name(profile, voice["provider"], voice["name"])
            entries.append({"id": named, "name": named})
        return web.json_response({"object": "list", "voices": entries, "data": entries})


def ended(answer: asyncio.Future[dict[str, Any]]) -> None:
    """The speak answer is in: its error is read even when nobody waits."""
    if not answer.cancelled():
        answer.exception()


def parse(document: dict[str, Any]) -> SpeechBody:
    try:
        return SpeechBody.model_validate(document)
    except ValidationError as exc:
        raise ServiceError("invalid_payload", describe_validation_error(exc), {"problems": validation_problems(exc)}) from exc


def event(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_type(status: int) -> str:
    """OpenAI's ``type`` for a status."""
    return {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
            429: "rate_limit_error"}.get(status, "invalid_request_error" if status < 500 else "server_error")


def error_body(code: str, message: str, data: dict[str, Any] | None = None, status: int | None = None) -> dict[str, Any]:
    """OpenAI's error object: ``param`` is the field at fault where the agent knows it."""
    param = None
    if data:
        problems = data.get("problems")
        if isinstance(problems, list) and problems and isinstance(problems[0], dict):
            param = problems[0].get("field") or None
        param = data.get("param", param)
    return {"message": message, "type": error_type(status or status_of(code)), "param": param, "code": code}


def openai_error(code: str, message: str, data: dict[str, Any] | None = None, status: int | None = None) -> web.Response:
    status = status or status_of(code)
    return web.json_response({"error": error_body(code, message, data, status)}, status=status)
