"""One speak request as Wyoming events (agent/wyoming/speech.py), each rule on its own: the frame
(one ``audio-start`` at the first sentence's rate, 16-bit mono, chunks of 1024 samples at each
sentence's own rate, one ``audio-stop``), the request it submits (``wy-`` id, the text, streamed,
only the pick's fields that are set), each refusal's code and where it comes (before audio: the
error alone; after: the error, then the stop), the fallback's warning, and what ``stop`` says
(whether it cut speech off) and refuses after it."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from concurrent.futures import Future
from typing import Any

import pytest
from wyoming.audio import AudioChunk, AudioStart
from wyoming.error import Error
from wyoming.event import Event

from agent.commands import Command
from agent.errors import ServiceError
from agent.speak.requests import SpeakRequest
from agent.voices.picks import VoicePick
from agent.wyoming.speech import Speech, audio_events, refusal
from providers.base import ProviderError, ProviderUnavailableError
from providers.common.audio import wav_bytes

PEER = "10.0.0.5:4000"
WAIT = 30  # seconds a step may take (never reached when it works)


def pcm(samples: int, start: int = 1) -> bytes:
    """``samples`` 16-bit samples that differ, so a chunk cut in the wrong place shows."""
    return b"".join(((start + i) % 30000).to_bytes(2, "little") for i in range(samples))


class Worker:
    """The speak command: hands ``wavs`` over on a thread of its own (as the speak worker does:
    what the out raises fails the request), then answers ``answer`` or fails with ``error``.
    ``hold``: waits for it before answering."""

    def __init__(self, wavs: tuple[bytes, ...] = (), answer: dict[str, Any] | None = None,
                 error: BaseException | None = None, hold: threading.Event | None = None) -> None:
        self.wavs, self.answer, self.error, self.hold = wavs, answer, error, hold
        self.requests: list[tuple[str, SpeakRequest]] = []
        self.wheres: list[str] = []
        self.futures: list[Future[dict[str, Any]]] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, profile: str, request: SpeakRequest, out: Any) -> Future[dict[str, Any]]:
        self.requests.append((profile, request))
        self.wheres.append(out.where(request.id, request.stream))
        future: Future[dict[str, Any]] = Future()

        def work() -> None:
            try:
                for seq, wav in enumerate(self.wavs):
                    out.chunk(request.id or "", seq, wav)
                if self.hold is not None:
                    self.hold.wait(WAIT)
                    out.chunk(request.id or "", len(self.wavs), self.wavs[-1])
                if self.error is not None:
                    raise self.error
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(self.answer or {"id": request.id, "sample_rate": 22050})

        self.futures.append(future)
        self.threads.append(threading.Thread(target=work))
        self.threads[-1].start()
        return future


def speech_of(run: Any, written: list[Event], profiles: tuple[str, ...] = ("default", "kitchen")) -> Speech:
    async def write(event: Event) -> None:
        written.append(event)

    return Speech(Command(SpeakRequest, run), lambda name: name in profiles, write, PEER)


def say(run: Any, text: str = "Hi.", pick: VoicePick = VoicePick("default")) -> tuple[list[Event], bool]:
    written: list[Event] = []

    async def main() -> bool:
        return await speech_of(run, written).say(text, pick)

    return written, asyncio.run(asyncio.wait_for(main(), WAIT))


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def chunks(events: list[Event]) -> list[AudioChunk]:
    return [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]


# -- the frame --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [22050, 24000, 16000])  # Piper's, Kokoro's, a trained voice's
def test_each_sentence_is_chunked_at_its_rate_inside_one_start_and_stop(rate: int) -> None:
    first, second = pcm(3000), pcm(1024, start=7)
    written, spoken = say(Worker((wav_bytes(first, rate), wav_bytes(second, rate)), {"id": "x", "sample_rate": rate}))
    assert spoken is True
    assert types(written) == ["audio-start", *["audio-chunk"] * 4, "audio-stop"]
    start = AudioStart.from_event(written[0])
    assert (start.rate, start.width, start.channels) == (rate, 2, 1)
    sent = chunks(written)
    assert [len(c.audio) for c in sent] == [2048, 2048, 1904, 2048]  # 1024 samples a chunk, a sentence's rest alone
    assert {(c.rate, c.width, c.channels) for c in sent} == {(rate, 2, 1)}
    assert b"".join(c.audio for c in sent) == first + second


@pytest.mark.parametrize(("samples", "sizes"), [
    (0, []), (1, [2]), (1023, [2046]), (1024, [2048]), (1025, [2048, 2]), (2048, [2048, 2048]),
])
def test_audio_events_cut_pcm_into_1024_sample_chunks(samples: int, sizes: list[int]) -> None:
    audio = pcm(samples)
    events = audio_events(audio, 24000)
    sent = [AudioChunk.from_event(e) for e in events]
    assert [len(c.audio) for c in sent] == sizes
    assert b"".join(c.audio for c in sent) == audio
    assert all((c.rate, c.width, c.channels) == (24000, 2, 1) for c in sent)


def test_an_answer_without_audio_is_still_framed_at_its_rate() -> None:
    written, spoken = say(Worker((), {"id": "x", "sample_rate": 16000}))
    assert spoken is True and types(written) == ["audio-start", "audio-stop"]
    start = AudioStart.from_event(written[0])
    assert (start.rate, start.width, start.channels) == (16000, 2, 1)


# -- the request ------------------------------------------------------------------------------------
def test_the_request_is_the_text_streamed_with_a_wyoming_id() -> None:
    worker = Worker((wav_bytes(pcm(10), 22050),))
    say(worker, "Good morning.")
    (profile, request), = worker.requests
    assert profile == "default" and request.text == "Good morning." and request.stream is True
    assert re.fullmatch(r"wy-[0-9a-f]{10}", request.id or ""), request.id
    assert (request.provider, request.voice, request.speaker, request.format) == (None, None, None, "wav")
    assert worker.wheres == [f"wyoming://{PEER}"]  # what speak.finished reports


def test_the_picks_profile_provider_voice_and_speaker_go_with_each_request_under_its_own_id() -> None:
    worker = Worker((wav_bytes(pcm(10), 22050),))

    async def main() -> None:  # two requests of one connection (a stream's sentences are so)
        speech = speech_of(worker, [])
        await speech.say("Hi.", VoicePick("kitchen", "piper", "en_GB-vctk-medium", "p226"))
        await speech.say("Hi.", VoicePick("kitchen", None, "af_heart"))

    asyncio.run(asyncio.wait_for(main(), WAIT))
    (first, second) = worker.requests
    assert (first[0], first[1].provider, first[1].voice, first[1].speaker) == ("kitchen", "piper", "en_GB-vctk-medium", "p226")
    assert (second[0], second[1].provider, second[1].voice, second[1].speaker) == ("kitchen", None, "af_heart", None)
    assert first[1].id != second[1].id  # an id per request: its events are its own


# -- refusals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("pick", "code", "text"), [
    (VoicePick("nobody"), "unknown_profile", "no profile 'nobody' (profiles are directories under profiles/)"),
    (VoicePick("../etc"), "invalid_profile", "profile name '../etc' is not a plain identifier"),
    (VoicePick("default", voice="no voice!"), "invalid_payload", None),
    (VoicePick("default", provider="nope"), "invalid_payload", None),
])
def test_a_request_refused_before_it_runs_is_one_error_and_no_audio(pick: VoicePick, code: str, text: str | None,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker((wav_bytes(pcm(10), 22050),))
    with caplog.at_level(logging.WARNING, "agent.wyoming"):
        written, spoken = say(worker, "Hi.", pick)
    assert spoken is False and worker.requests == [] and types(written) == ["error"]
    error = Error.from_event(written[0])
    assert error.code == code
    assert error.text == text if text else error.text.startswith(("voice:", "provider:"))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"Wyoming speak request for {pick.profile} refused: {code}: {error.text}")]


def test_the_text_is_validated_by_the_speak_model() -> None:
    written, spoken = say(Worker(), "")
    assert spoken is False and [Error.from_event(e).code for e in written] == ["invalid_payload"]
    assert Error.from_event(written[0]).text.startswith("text:")


def test_a_refusal_of_the_speak_command_is_its_code(caplog: pytest.LogCaptureFixture) -> None:
    def busy(profile: str, request: SpeakRequest, out: Any) -> Future[dict[str, Any]]:
        raise ServiceError("busy", "the speak queue is full")

    with caplog.at_level(logging.WARNING, "agent.wyoming"):
        written, spoken = say(busy)
    assert spoken is False and [e.data for e in written] == [{"text": "the speak queue is full", "code": "busy"}]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a refusal is no fault


@pytest.mark.parametrize("answer", [{"id": "x"}, None])
def test_a_command_that_crashes_or_answers_no_future_is_internal_error_and_logged(
        answer: Any, caplog: pytest.LogCaptureFixture) -> None:
    def broken(profile: str, request: SpeakRequest, out: Any) -> Any:
        if answer is None:
            raise KeyError("bug")
        return answer

    with caplog.at_level(logging.WARNING, "agent.wyoming"):
        written, spoken = say(broken)
    assert spoken is False and types(written) == ["error"]
    expected = "KeyError: 'bug'" if answer is None else "TypeError: the speak command answers with a Future"
    assert written[0].data == {"text": expected, "code": "internal_error"}
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failed] == ["Wyoming speak request failed"] and failed[0].exc_info


def test_a_failure_before_any_audio_is_the_error_alone() -> None:
    written, spoken = say(Worker((), error=ProviderUnavailableError("piper is not installed")))
    assert spoken is False
    assert [e.data for e in written] == [{"text": "piper is not installed", "code": "provider_unavailable"}]


def test_a_failure_after_audio_is_the_error_then_the_stop() -> None:
    written, spoken = say(Worker((wav_bytes(pcm(1500), 22050),), error=ProviderError("the engine broke")))
    assert spoken is False
    assert types(written) == ["audio-start", "audio-chunk", "audio-chunk", "error", "audio-stop"]
    assert written[3].data == {"text": "the engine broke", "code": "provider_error"}


@pytest.mark.parametrize(("exc", "code", "text"), [
    (ServiceError("busy", "full"), "busy", "full"),
    (ProviderError("broke"), "provider_error", "broke"),
    (ProviderUnavailableError("absent"), "provider_unavailable", "absent"),
    (RuntimeError("bug"), "internal_error", "RuntimeError: bug"),
    (ConnectionError(), "internal_error", "ConnectionError: "),
])
def test_refusal_maps_each_error_to_its_code(exc: BaseException, code: str, text: str) -> None:
    error = refusal(exc)
    assert (error.code, error.text) == (code, text)


def test_a_fallback_is_spoken_framed_and_told_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    answer = {"id": "x", "sample_rate": 22050, "fallback": True, "provider": "piper", "voice": "en_US-lessac-medium",
              "fallback_code": "voice_not_found", "fallback_reason": "no voice af_nobody"}
    with caplog.at_level(logging.WARNING, "agent.wyoming"):
        written, spoken = say(Worker((wav_bytes(pcm(100), 22050),), answer))
    assert spoken is True and types(written) == ["audio-start", "audio-chunk", "audio-stop"]
    assert [r.getMessage() for r in caplog.records] == [
        f"Wyoming synthesize for wyoming://{PEER} spoken by piper/en_US-lessac-medium instead (voice_not_found): "
        "no voice af_nobody"]


def test_an_answer_without_fallback_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "agent.wyoming"):
        say(Worker((wav_bytes(pcm(100), 22050),), {"id": "x", "sample_rate": 22050, "fallback": False}))
    assert caplog.records == []


# -- the connection's end ---------------------------------------------------------------------------
def test_stop_says_whether_it_cut_speech_off() -> None:
    hold = threading.Event()
    worker = Worker((wav_bytes(pcm(100), 22050),), hold=hold)
    written: list[Event] = []

    async def main() -> tuple[bool, bool, bool]:
        idle = speech_of(Worker(), [])
        quiet = idle.stop()  # nothing was being said
        speech = speech_of(worker, written)
        saying = asyncio.ensure_future(speech.say("One. Two.", VoicePick("default")))
        while "audio-chunk" not in types(written):
            await asyncio.sleep(0.01)
        cut = speech.stop()  # while its text is being spoken
        hold.set()
        spoken = await saying
        return quiet, cut, spoken

    quiet, cut, spoken = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert (quiet, cut) == (False, True)
    error = worker.futures[0].exception()  # the worker's next sentence was refused
    assert isinstance(error, ServiceError) and error.code == "client_gone"
    assert str(error) == f"the Wyoming client has gone (wyoming://{PEER})"
    assert spoken is False and len(chunks(written)) == 1


def test_after_a_whole_answer_stop_cut_nothing_off_and_no_more_is_said() -> None:
    worker = Worker((wav_bytes(pcm(100), 22050),))
    written: list[Event] = []

    async def main() -> bool:
        speech = speech_of(worker, written)
        assert await speech.say("One.", VoicePick("default")) is True
        refused = await speech.say("Two.", VoicePick("nobody")) is False  # a refusal ends its turn too
        cut = speech.stop()
        with pytest.raises(ConnectionAbortedError, match="^the connection has ended$"):
            await speech.say("Three.", VoicePick("default"))
        return refused and not cut

    assert asyncio.run(asyncio.wait_for(main(), WAIT)) is True
    assert len(worker.requests) == 1  # the third never reached the worker


def test_a_write_that_fails_cuts_the_speech_off_and_is_raised() -> None:
    hold = threading.Event()
    worker = Worker((wav_bytes(pcm(100), 22050),), hold=hold)

    async def write(event: Event) -> None:
        if event.type == "audio-chunk":
            raise ConnectionResetError("the client has gone")

    async def main() -> bool:
        speech = Speech(Command(SpeakRequest, worker), lambda name: True, write, PEER)
        with pytest.raises(ConnectionResetError):
            await speech.say("One. Two.", VoicePick("default"))
        hold.set()
        return speech.stop()

    assert asyncio.run(asyncio.wait_for(main(), WAIT)) is True  # cut off, though nothing is being said now
    worker.threads[0].join(WAIT)
    error = worker.futures[0].exception()
    assert isinstance(error, ServiceError) and error.code == "client_gone"


def test_stop_counts_every_text_still_being_spoken() -> None:
    """Two texts of one connection at once (a stream's sentence while a synthesize is said), and
    one said before: stop cuts off speech while either of the two is still being said."""
    holds = [threading.Event(), threading.Event(), threading.Event()]
    written: list[Event] = []

    def run(profile: str, request: SpeakRequest, out: Any) -> Future[dict[str, Any]]:
        hold = holds.pop(0)
        future: Future[dict[str, Any]] = Future()

        def work() -> None:
            hold.wait(WAIT)
            try:
                out.chunk(request.id or "", 0, wav_bytes(pcm(10), 22050))
            except ServiceError as exc:
                future.set_exception(exc)
            else:
                future.set_result({"id": request.id, "sample_rate": 22050})

        threading.Thread(target=work).start()
        return future

    async def main() -> bool:
        speech = speech_of(run, written)
        holds[0].set()
        await speech.say("Said before.", VoicePick("default"))
        first = asyncio.ensure_future(speech.say("One.", VoicePick("default")))
        second = asyncio.ensure_future(speech.say("Two.", VoicePick("default")))
        while len(holds) > 0:  # both submitted
            await asyncio.sleep(0.01)
        release_first, release_second = release_order
        release_first.set()
        await first
        cut = speech.stop()  # the second is still being said
        release_second.set()
        await second
        return cut

    release_order = tuple(holds[1:])
    assert asyncio.run(asyncio.wait_for(main(), WAIT)) is True
