"""Streamed capture: PCM frames per session (and Hermes satellites' WAV frames) cut into
utterances by VAD as each one ends, not when the session stops.

Frames are handed from the MQTT thread to one stream thread through a bounded queue; the
stream thread resamples, segments and passes finished utterances to the record service.
A satellite's speech recognition (Hermes ``asr/textCaptured``) gives the utterance it heard its
transcript: a satellite's utterances wait a few seconds for the text (while the site listens, until
it stops), and a text that comes before the VAD closed its utterance waits for that one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, ValidationError

from agent.events import EventBus
from agent.layout import Layout
from agent.record.decode import ANALYSIS_RATE, AudioDecodeError, decode_wav, pcm16_to_audio
from agent.record.echo import OwnSpeech
from agent.record.service import RecordService
from agent.record.vad import Segmenter, Utterance
from agent.requests import load_json
from agent.work import ByteBudget
from providers.common.names import is_plain_name
from providers.settings_base import InputModel

log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0  # a session with no frames for this long is closed (its open utterance kept)
PAIR_SECONDS = 5.0  # how long an utterance waits for its transcript, or a transcript for its utterance
MAX_SESSIONS = 32
MAX_FRAME_BYTES = 256 * 1024
MAX_INBOX_ITEMS = 2000  # frames of a few hundredths of a second: half a minute of 32 sessions
HERMES_FRAME_SECONDS = 2.0  # a satellite sends frames of a few hundredths of a second


class StreamStart(InputModel):
    sample_rate: int = Field(16000, ge=8000, le=48000, description="Rate of the 16-bit mono PCM frames.")
    source: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass
class Session:
    profile: str
    name: str
    rate: int
    source: str
    segmenter: Segmenter
    resampler: Any
    last_frame: float = field(default_factory=time.monotonic)
    seconds: float = 0.0


@dataclass
class Heard:
    """What a satellite's speech recognition said about its latest utterance."""

    listening: bool = False
    held: list[Utterance] = field(default_factory=list)  # cut while it listened: waiting for the text
    held_since: float = 0.0
    text: str | None = None  # came before its utterance was cut
    text_at: float = 0.0


class StreamSessions:
    def __init__(
        self, layout: Layout, records: RecordService, events: EventBus, hermes_sites: dict[str, str],
        inbox_bytes: int,
    ) -> None:
        """Frames of ``inbox_bytes`` in all (and at most MAX_INBOX_ITEMS) wait for the stream thread;
        more are dropped, each with a ``stream.error`` event."""
        self._layout = layout
        self._records = records
        self._events = events
        self._hermes_sites = hermes_sites
        self._sessions: dict[tuple[str, str], Session] = {}
        self._heard: dict[tuple[str, str], Heard] = {}
        self.own_speech = OwnSpeech()
        events.listen(self._on_event)
        self._inbox: queue.Queue[tuple[str, str, str, bytes] | None] = queue.Queue(maxsize=MAX_INBOX_ITEMS)
        self._inbox_bytes = ByteBudget(inbox_bytes)
        self._thread = threading.Thread(target=self._run, name="streams", daemon=True)
        self._thread.start()

    # -- MQTT thread -----------------------------------------------------------------------
    def on_stream(self, profile: str, session: str, kind: str, payload: bytes) -> None:
        self._put(profile, session, kind, payload)

    def on_hermes_frame(self, site: str, payload: bytes) -> None:
        profile = self._hermes_sites.get(site)
        if profile is None:
            return  # not a site this agent records
        if len(payload) > MAX_FRAME_BYTES:
            self._error(profile, f"hermes-{site}", f"Hermes frame of {len(payload)} bytes dropped (at most {MAX_FRAME_BYTES})")
            return
        self._put(profile, f"hermes-{site}", "hermes", payload)

    def on_hermes_asr(self, site: str, event: str, text: str = "") -> None:
        """``listening``, ``heard`` (with the transcript) or ``stopped``, for a recorded site."""
        profile = self._hermes_sites.get(site)
        if profile is not None:
            self._put(profile, f"hermes-{site}", f"asr-{event}", text.encode("utf-8"))

    def _put(self, profile: str, session: str, kind: str, payload: bytes) -> None:
        if not self._inbox_bytes.take(len(payload)):
            self._error(profile, session, f"stream input is backed up ({self._inbox_bytes.held} bytes waiting, "
                                          f"at most {self._inbox_bytes.limit}); frames dropped")
            return
        try:
            self._inbox.put_nowait((profile, session, kind, payload))
        except queue.Full:
            self._inbox_bytes.release(len(payload))
            self._error(profile, session, "stream input is backed up; frames dropped")

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join(timeout=10)

    # -- stream thread ---------------------------------------------------------------------
    def _run(self) -> None:
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked >= 1.0:  # satellites send frames all the time: check anyway
                self._close_idle()
                checked = time.monotonic()
            try:
                item = self._inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                for key in list(self._sessions):
                    self._close(key)
                for (profile, name), heard in self._heard.items():  # nothing more will be heard
                    self._release(profile, name, heard, f"hermes:{name.removeprefix('hermes-')}", None)
                return
            try:
                self._handle(*item)
            except Exception:
                log.exception("stream %s/%s failed", item[0], item[1])
                self._error(item[0], item[1], "internal error while processing the stream")
            finally:
                self._inbox_bytes.release(len(item[3]))

    def _handle(self, profile: str, name: str, kind: str, payload: bytes) -> None:
        if not is_plain_name(name) or not self._layout.exists(profile):
            self._error(profile, name, "unknown profile or session name that is not a plain identifier")
            return
        key = (profile, name)
        if kind == "start":
            self._start(profile, name, payload)
        elif kind == "frame":
            session = self._sessions.get(key)
            if session is None:
                self._error(profile, name, "frame for a session that was never started (send .../start first)")
                return
            if len(payload) > MAX_FRAME_BYTES or len(payload) % 2:
                self._error(profile, name, f"bad frame: {len(payload)} bytes (16-bit PCM, at most {MAX_FRAME_BYTES})")
                return
            self._feed(session, pcm16_to_audio(payload, session.rate).samples)
        elif kind == "stop":
            if key not in self._sessions:
                self._error(profile, name, "stop for a session that was never started")
                return
            self._close(key)
        elif kind == "hermes":
            self._hermes(profile, name, payload)
        elif kind.startswith("asr-"):
            self._asr(profile, name, kind[4:], payload.decode("utf-8", "replace"))
        else:
            self._error(profile, name, f"unknown stream message {kind!r} (start, frame or stop)")

    def _start(self, profile: str, name: str, payload: bytes) -> None:
        try:
            start = StreamStart.model_validate(load_json(payload) if payload.strip() else {})
        except (ValueError, ValidationError) as exc:
            self._error(profile, name, f"bad start message: {exc}")
            return
        if (profile, name) in self._sessions:
            self._close((profile, name))
        if len(self._sessions) >= MAX_SESSIONS:
            self._error(profile, name, f"too many open sessions ({MAX_SESSIONS})")
            return
        self._sessions[(profile, name)] = self._new_session(profile, name, start.sample_rate, start.source or f"stream:{name}")
        self._events.emit(profile, "stream.started", {"session": name, "sample_rate": start.sample_rate})

    def _new_session(self, profile: str, name: str, rate: int, source: str) -> Session:
        import soxr

        resampler = soxr.ResampleStream(rate, ANALYSIS_RATE, 1, dtype="float32") if rate != ANALYSIS_RATE else None
        return Session(profile, name, rate, source, Segmenter(self._records.vad_options(profile)), resampler)

    def _hermes(self, profile: str, name: str, payload: bytes) -> None:
        try:
            audio = decode_wav(payload, max_seconds=HERMES_FRAME_SECONDS)
        except AudioDecodeError as exc:
            self._error(profile, name, f"bad Hermes audio frame: {exc}")
            return
        session = self._sessions.get((profile, name))
        if session is None or session.rate != audio.rate:
            if session is not None:
                self._close((profile, name))
            session = self._new_session(profile, name, audio.rate, f"hermes:{name.removeprefix('hermes-')}")
            self._sessions[(profile, name)] = session
        self._feed(session, audio.samples)

    def _feed(self, session: Session, samples: np.ndarray) -> None:
        session.last_frame = time.monotonic()
        session.seconds += len(samples) / session.rate
        if session.resampler is not None:
            samples = session.resampler.resample_chunk(samples)
        self._submit(session, list(session.segmenter.feed(samples)))

    def _on_event(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        if name == "speak.finished":
            self.own_speech.spoke(profile, float(data.get("audio_seconds") or 0.0))

    def _submit(self, session: Session, utterances: list[Utterance]) -> None:
        utterances = [u for u in utterances if not self._is_own_speech(session, u)]
        if not utterances:
            return
        if not session.name.startswith("hermes-"):  # nothing will tell this stream's words
            self._score(session.profile, session.name, utterances, session.source, None)
            return
        heard = self._heard.setdefault((session.profile, session.name), Heard())
        if heard.text is not None and time.monotonic() - heard.text_at < PAIR_SECONDS and not heard.held:
            transcript, heard.text = heard.text, None
            self._score(session.profile, session.name, utterances, session.source, transcript)
            return
        heard.held_since = heard.held_since if heard.held else time.monotonic()
        heard.held.extend(utterances)

    def _is_own_speech(self, session: Session, utterance: Utterance) -> bool:
        if not self._records.drops_own_speech(session.profile):
            return False
        keys = (session.profile, f"site:{session.name.removeprefix('hermes-')}") if session.name.startswith("hermes-") \
            else (session.profile,)
        if not self.own_speech.overlaps(keys, utterance.seconds):
            return False
        self._events.emit(session.profile, "sample.rejected", {
            "request_id": None, "source": session.source, "duration": round(utterance.seconds, 3),
            "reasons": ["recorded while the agent was speaking: its own voice, heard back"]})
        return True

    def _score(self, profile: str, name: str, utterances: list[Utterance], source: str, transcript: str | None) -> None:
        if len(utterances) > 1:
            transcript = None  # which of them said it is not known
        if not self._records.submit_utterances(profile, utterances, source, transcript):
            self._error(profile, name, "scoring queue is full; utterances dropped")

    def _asr(self, profile: str, name: str, event: str, text: str) -> None:
        heard = self._heard.setdefault((profile, name), Heard())
        source = f"hermes:{name.removeprefix('hermes-')}"
        if event == "listening":
            self._release(profile, name, heard, source, None)
            heard.listening, heard.text = True, None
        elif event == "heard":
            heard.listening = False
            if heard.held:
                self._release(profile, name, heard, source, text.strip() or None)
            else:
                heard.text, heard.text_at = text.strip() or None, time.monotonic()
        elif event == "stopped":
            heard.listening = False  # what it held waits PAIR_SECONDS more for a text, then goes without
            heard.held_since = time.monotonic()

    def _release(self, profile: str, name: str, heard: Heard, source: str, transcript: str | None) -> None:
        held, heard.held = heard.held, []
        if held:
            self._score(profile, name, held, source, transcript)

    def _close(self, key: tuple[str, str]) -> None:
        session = self._sessions.pop(key)
        if session.resampler is not None:
            tail = session.resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self._submit(session, list(session.segmenter.feed(tail)))
        self._submit(session, list(session.segmenter.flush()))
        self._events.emit(session.profile, "stream.stopped", {"session": session.name, "seconds": round(session.seconds, 2)})

    def _close_idle(self) -> None:
        now = time.monotonic()
        for key, session in list(self._sessions.items()):
            if now - session.last_frame > IDLE_SECONDS:
                self._close(key)
        for (profile, name), heard in self._heard.items():
            waited = now - heard.held_since
            if heard.held and ((not heard.listening and waited > PAIR_SECONDS) or waited > IDLE_SECONDS):
                self._release(profile, name, heard, f"hermes:{name.removeprefix('hermes-')}", None)

    def _error(self, profile: str, session: str, message: str) -> None:
        self._events.emit(profile, "stream.error", {"session": session, "error": message})
