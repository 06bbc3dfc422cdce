"""The speech routes of the HTTP door in-process (agent/http/api.py), each rule on its own:
``POST /api/tts`` streamed (the request the core gets, the format's media type, the speaker's
headers) or ``"stream": false`` (one WAV with every field of the summary as a header, the
fallback's reason only when there is one); ``/api/tts-stream`` (each sentence a binary frame, the
summary whole in its ``done`` frame, the id and code of a failure, a message a byte under the
limit and one of it). The WAVs are at 24 kHz: a door that assumed Piper's 22.05 kHz would show."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from websockets.asyncio.client import connect

from agent.commands import Command
from agent.errors import ServiceError
from agent.http.api import Api, CollectedAudio
from agent.settings import AgentSettings
from providers.base import ProviderError
from providers.common.audio import read_wav_pcm, wav_bytes
from tests.agent.http.fake_core import Anything, fake_core
from tests.agent.http.test_tts_stream import serving

T = TypeVar("T")
WAIT = 30  # seconds a step may take (never reached when it works)
ONE, TWO = b"\x01\x00" * 300, b"\x02\x00\x03\x00" * 200
SENTENCES = (wav_bytes(ONE, 24000), wav_bytes(TWO, 24000))
SUMMARY: dict[str, Any] = {"id": "q9", "provider": "kokoro", "voice": "af_heart", "cached": True, "fallback": True,
           "fallback_code": "voice_not_found", "fallback_reason": "no voice af_nobody", "audio_seconds": 1.25,
           "latency_ms": 37, "format": "mp3", "content_type": "audio/mpeg", "chunks": 2}
DONE_FRAME: dict[str, Any] = {"done": True, **SUMMARY}  # the summary whole, with done
SPEAKER = {"provider": "kokoro", "voice": "af_heart", "cached": False, "fallback": True, "fallback_code": "voice_not_found"}


class Speaker:
    """The speak command: records each request (its profile, fields and out), tells the out who
    speaks (``begin``, where it takes it), hands ``pieces`` over from a thread of its own, then
    answers ``answer`` or fails with ``error``."""

    def __init__(self, pieces: tuple[bytes, ...] = SENTENCES, answer: dict[str, Any] | None = None,
                 error: BaseException | None = None) -> None:
        self.pieces, self.answer, self.error = pieces, answer or SUMMARY, error
        self.calls: list[SimpleNamespace] = []

    def __call__(self, profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
        stream = bool((request.model_extra or {}).get("stream"))
        self.calls.append(SimpleNamespace(profile=profile, fields=dict(request.model_extra or {}), out=out,
                                          where=out.where("r1", stream), who=out.departure.who,
                                          peer=out.departure.where, gone=out.departure.gone))
        future: Future[dict[str, Any]] = Future()

        def run() -> None:
            try:
                begin = getattr(out, "begin", None)
                if begin is not None:
                    begin("r1", SPEAKER)
                for seq, piece in enumerate(self.pieces):
                    out.chunk("r1", seq, piece)
                if self.error is not None:
                    raise self.error
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(dict(self.answer))

        threading.Thread(target=run, daemon=True).start()
        return future


def core_with(speaker: Speaker) -> Any:
    core = fake_core()
    core.commands["speak"] = Command(Anything, speaker)  # type: ignore[arg-type]
    core.layout.exists = lambda profile: profile in ("default", "kitchen")
    return core


def talk(speaker: Speaker, conversation: Callable[[TestClient], Awaitable[T]], **settings: Any) -> T:
    async def go() -> T:
        async with TestClient(TestServer(Api(core_with(speaker), AgentSettings(**settings)).app())) as client:
            return await conversation(client)
    return asyncio.run(asyncio.wait_for(go(), WAIT))


def post_tts(speaker: Speaker, body: Any, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> tuple[int, CIMultiDict[str], bytes]:
    """The status, headers (in any letter case, as HTTP reads them) and body."""
    async def conversation(client: TestClient) -> tuple[int, CIMultiDict[str], bytes]:
        response = await client.post("/api/tts", data=raw if raw is not None else json.dumps(body), headers=headers)
        return response.status, CIMultiDict(response.headers), await response.read()
    return talk(speaker, conversation)


# -- POST /api/tts, streamed ------------------------------------------------------------------------
def test_a_streamed_answer_is_the_pieces_as_they_come_with_the_speakers_headers() -> None:
    speaker = Speaker((b"first bytes", b"then more"))
    status, headers, body = post_tts(speaker, {"text": "Hi.", "id": "q1"})
    assert (status, body) == (200, b"first bytesthen more")
    assert headers["Content-Type"] == "audio/wav" and "Content-Length" not in headers
    assert {k: headers[k] for k in ("X-Request-Id", "X-Provider", "X-Voice", "X-Cached", "X-Fallback",
                                    "X-Fallback-Reason")} == {
        "X-Request-Id": "r1", "X-Provider": "kokoro", "X-Voice": "af_heart", "X-Cached": "false", "X-Fallback": "true",
        "X-Fallback-Reason": "voice_not_found"}
    (call,) = speaker.calls
    assert call.profile == "default"
    assert call.fields == {"text": "Hi.", "id": "q1", "format": "wav", "stream": True}  # no profile among them
    assert (call.where, call.who, call.peer, call.gone) == ("http", "the HTTP client", "127.0.0.1", False)


@pytest.mark.parametrize(("fmt", "media_type"), [
    ("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("opus", "audio/ogg"), ("flac", "audio/flac"), ("pcm", "audio/pcm"),
])
def test_each_format_is_asked_of_the_core_and_named_in_the_content_type(fmt: str, media_type: str) -> None:
    speaker = Speaker((b"bytes",))
    status, headers, _ = post_tts(speaker, {"text": "Hi.", "format": fmt, "profile": "kitchen", "stream": True})
    assert (status, headers["Content-Type"]) == (200, media_type)
    assert speaker.calls[0].profile == "kitchen"
    assert speaker.calls[0].fields == {"text": "Hi.", "format": fmt, "stream": True}


@pytest.mark.parametrize(("body", "raw", "status", "code", "error"), [
    ({"text": "Hi.", "profile": "nobody"}, None, 404, "unknown_profile", None),
    ({"text": "Hi.", "profile": "a/b"}, None, 400, "invalid_profile", None),
    ({"text": "Hi.", "format": 5}, None, 400, "invalid_payload", 'format: must be a string such as "mp3"'),
    ({"text": "Hi.", "format": "aac"}, None, 400, "unsupported_format", None),
    (None, b"[1]", 400, "invalid_payload", "body must be a JSON object"),
    (None, b"{", 400, "invalid_json", None),
    ({"text": "Hi.", "stream": False, "profile": "nobody"}, None, 404, "unknown_profile", None),
])
def test_a_request_refused_before_audio_is_the_json_error(body: Any, raw: bytes | None, status: int, code: str,
                                                          error: str | None) -> None:
    speaker = Speaker()
    got, headers, answer = post_tts(speaker, body, raw=raw)
    refused = json.loads(answer)
    assert (got, headers["Content-Type"].split(";")[0], refused["code"]) == (status, "application/json", code)
    assert error is None or refused["error"] == error
    assert speaker.calls == []


def test_a_failure_before_any_audio_is_the_json_error_with_its_status() -> None:
    status, _, body = post_tts(Speaker((), error=ProviderError("the engine broke")), {"text": "Hi."})
    assert (status, json.loads(body)) == (502, {"error": "the engine broke", "code": "provider_error"})


# -- POST /api/tts, whole ---------------------------------------------------------------------------
def test_stream_false_is_one_wav_with_every_field_of_the_summary_as_a_header() -> None:
    speaker = Speaker()
    status, headers, body = post_tts(speaker, {"text": "Hi.", "stream": False})
    assert status == 200 and headers["Content-Type"] == "audio/mpeg"  # what the summary says
    assert {k: headers[k] for k in ("X-Request-Id", "X-Provider", "X-Voice", "X-Cached", "X-Fallback",
                                    "X-Audio-Seconds", "X-Latency-Ms", "X-Fallback-Reason")} == {
        "X-Request-Id": "q9", "X-Provider": "kokoro", "X-Voice": "af_heart", "X-Cached": "true", "X-Fallback": "true",
        "X-Audio-Seconds": "1.25", "X-Latency-Ms": "37", "X-Fallback-Reason": "voice_not_found"}
    assert read_wav_pcm(body) == (ONE + TWO, 24000)  # the sentences joined, at their rate
    assert speaker.calls[0].fields == {"text": "Hi.", "stream": False, "format": "wav"}
    assert (speaker.calls[0].where, speaker.calls[0].who, speaker.calls[0].peer) == ("http", "the HTTP client", "127.0.0.1")


def test_without_a_fallback_there_is_no_reason_header() -> None:
    answer = {**SUMMARY, "cached": False, "fallback": False, "fallback_code": None, "content_type": "audio/wav"}
    _, headers, _ = post_tts(Speaker(answer=answer), {"text": "Hi.", "stream": False})
    assert (headers["X-Cached"], headers["X-Fallback"], headers["Content-Type"]) == ("false", "false", "audio/wav")
    assert "X-Fallback-Reason" not in headers


def test_collected_audio_is_one_file_as_it_came_or_the_sentences_joined() -> None:
    out = CollectedAudio()
    assert out.where("r1", False) == "http" and out.departure.who == "the HTTP client" and out.departure.where == "http"
    assert read_wav_pcm(out.audio()) == (b"", 22050)  # nothing came: an empty WAV, not a crash
    out.chunk("r1", 0, SENTENCES[0])
    assert out.audio() == SENTENCES[0]  # one file passes as it is
    out.chunk("r1", 1, SENTENCES[1])
    assert read_wav_pcm(out.audio()) == (ONE + TWO, 24000)
    out.whole("r1", b"the whole file")
    assert out.audio() == b"the whole file"  # the whole answer replaces what came before
    mixed = CollectedAudio()
    mixed.chunk("r1", 0, wav_bytes(ONE, 16000))
    mixed.chunk("r1", 1, SENTENCES[1])
    assert read_wav_pcm(mixed.audio()) == (ONE + TWO, 16000)  # the first sentence's rate


# -- WS /api/tts-stream -----------------------------------------------------------------------------
async def exchange(client: TestClient, *messages: str | bytes) -> list[Any]:
    """Every frame answered to ``messages`` up to each ``done``: bytes as they are, text as JSON."""
    ws = await client.ws_connect("/api/tts-stream")
    frames: list[Any] = []
    for message in messages:
        await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
        while True:
            frame = await ws.receive(timeout=WAIT)
            if frame.type == WSMsgType.BINARY:
                frames.append(frame.data)
                continue
            assert frame.type == WSMsgType.TEXT, frame
            frames.append(json.loads(frame.data))
            break
    await ws.close()
    return frames


def ws_talk(speaker: Speaker, *messages: str | bytes) -> list[Any]:
    return talk(speaker, lambda client: exchange(client, *messages))


def test_each_sentence_is_a_binary_frame_then_the_whole_summary_with_done() -> None:
    speaker = Speaker()
    frames = ws_talk(speaker, json.dumps({"text": "One. Two.", "id": "q1", "format": "wav", "stream": False}))
    assert frames == [*SENTENCES, DONE_FRAME]
    (call,) = speaker.calls
    assert call.profile == "default"
    assert call.fields == {"text": "One. Two.", "id": "q1", "format": "wav", "stream": True}  # streamed whatever it says
    assert (call.where, call.who, call.peer, call.gone) == ("websocket", "the WebSocket client", "127.0.0.1", False)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "pcm"])
def test_the_messages_profile_and_format_go_to_the_core(fmt: str) -> None:
    speaker = Speaker((b"a file", b"another"))
    frames = ws_talk(speaker, json.dumps({"text": "Hi.", "format": fmt, "profile": "kitchen"}))
    assert frames[:2] == [b"a file", b"another"] and frames[2]["done"] is True
    assert (speaker.calls[0].profile, speaker.calls[0].fields) == ("kitchen", {"text": "Hi.", "format": fmt, "stream": True})


@pytest.mark.parametrize(("error", "code", "text"), [
    (ProviderError("the engine broke"), "provider_error", "the engine broke"),
    (ServiceError("client_gone", "gone"), "client_gone", "gone"),
    (KeyError("bug"), "internal_error", "'bug'"),
])
def test_a_failure_after_a_sentence_ends_with_done_its_id_and_code(error: BaseException, code: str, text: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "agent.http.api"):
        frames = ws_talk(Speaker(SENTENCES[:1], error=error), json.dumps({"text": "Hi.", "id": "q3"}))
    assert frames == [SENTENCES[0], {"done": True, "id": "q3", "code": code, "error": text}]
    bugs = [r for r in caplog.records if r.levelno >= logging.ERROR]  # a bug is logged with its traceback, a refusal not
    assert [(r.getMessage(), bool(r.exc_info)) for r in bugs] == ([("WebSocket speak failed", True)] if code == "internal_error" else [])


def test_a_message_that_is_no_object_is_refused_in_the_messages_words_and_the_socket_stays() -> None:
    speaker = Speaker()
    frames = ws_talk(speaker, "[1]", b"\x00", json.dumps({"text": "Hi."}))
    assert frames[0] == {"done": True, "code": "invalid_payload", "error": "message must be a JSON object"}
    assert frames[1] == {"done": True, "code": "invalid_payload", "error": "send a JSON text frame"}
    assert frames[2:] == [*SENTENCES, DONE_FRAME] and len(speaker.calls) == 1


def test_a_message_under_the_request_limit_is_read_and_one_of_it_closes_the_socket() -> None:
    limit = 256  # aiohttp takes a frame shorter than max_msg_size: the JSON routes take one of the limit

    def message(size: int) -> str:
        text = json.dumps({"text": ""})
        return json.dumps({"text": "x" * (size - len(text))})

    async def conversation(client: TestClient) -> tuple[list[Any], Any, int | None]:
        fits = await exchange(client, message(limit - 1))
        ws = await client.ws_connect("/api/tts-stream")
        await ws.send_str(message(limit))
        closing = await ws.receive(timeout=WAIT)
        await ws.close()
        return fits, closing.type, ws.close_code

    speaker = Speaker((b"said",))
    fits, closing, code = talk(speaker, conversation, max_request_bytes=limit)
    assert fits[0] == b"said" and fits[1]["done"] is True
    assert closing in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert code == WSCloseCode.MESSAGE_TOO_BIG
    assert len(speaker.calls) == 1


def test_the_websocket_finds_dead_clients_by_a_ping_every_30_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that vanishes without a word (a phone that lost its network) is found by the
    heartbeat: without one its connection would wait for the next sentence for ever."""
    made: list[dict[str, Any]] = []

    class Recorded(web.WebSocketResponse):
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(web, "WebSocketResponse", Recorded)
    ws_talk(Speaker((b"said",)), json.dumps({"text": "Hi."}))
    assert made == [{"heartbeat": 30, "max_msg_size": AgentSettings().max_request_bytes}]


class Lingering(Speaker):
    """Its first sentence, then it waits (as the next sentence is made) until its client is seen
    gone; then, as a worker that asked a moment before the client left, it hands the next sentence
    over all the same (the door's write of it fails) and fails once the door has given up."""

    def __init__(self) -> None:
        super().__init__((SENTENCES[0],))
        self.seen_gone = threading.Event()
        self.door_left = threading.Event()
        self.answer_failed = threading.Event()

    def __call__(self, profile: str, request: Any, out: Any) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()

        def run() -> None:
            out.chunk("r1", 0, SENTENCES[0])
            tick = threading.Event()
            for _ in range(WAIT * 100):  # the worker's next check, made until the client is seen gone
                if out.departure.gone:
                    self.seen_gone.set()
                    break
                tick.wait(0.01)
            out.deliver(SENTENCES[1])  # asked before the client left: the door's write fails
            self.door_left.wait(WAIT)
            future.set_exception(ServiceError("client_gone", "gone"))
            self.answer_failed.set()

        threading.Thread(target=run, daemon=True).start()
        return future


def test_a_websocket_client_that_vanishes_is_seen_gone_by_the_worker_before_its_next_sentence(
        caplog: pytest.LogCaptureFixture) -> None:
    """Its connection is asked from the worker's thread: the door is waiting for the next sentence
    and writes nothing, so only the connection's look says the client has gone. And the answer's
    failure, after the door gave up, is read all the same: no 'exception was never retrieved'."""
    speaker = Lingering()

    async def go() -> None:
        async with serving(core_with(speaker)) as url:
            async with connect(url) as ws:
                await ws.send(json.dumps({"text": "One. Two."}))
                assert isinstance(await ws.recv(), bytes)
                ws.transport.abort()  # gone, without a close frame
            await asyncio.to_thread(speaker.seen_gone.wait, WAIT)
            while not any("left mid-stream" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
            speaker.door_left.set()
            await asyncio.to_thread(speaker.answer_failed.wait, WAIT)
            for _ in range(10):  # the failure reaches the loop
                await asyncio.sleep(0.01)
            gc.collect()

    with caplog.at_level(logging.INFO):
        asyncio.run(asyncio.wait_for(go(), WAIT * 2))
    assert speaker.seen_gone.is_set()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
