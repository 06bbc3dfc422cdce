"""Speak requests per profile: a bounded queue and one worker each, so a slow provider in one
profile never delays another, and a flood is refused ("busy") instead of queued forever.

The audio goes wherever the request's door wants it (``AudioOut``): MQTT topics, an HTTP body,
WebSocket frames, Wyoming chunks; the events and the summary are the same for all."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from agent.config.model import CacheConfig, VoiceConfig, deep_merge
from agent.config.store import ConfigStore
from agent.requests import describe_validation_error
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.speak.budget import AudioBudget
from agent.speak.cache import AudioCache
from agent.speak.delivery import Delivery
from agent.speak.departure import check_client
from agent.speak.encoding import audio_format
from agent.speak.engines import ProviderPool
from agent.speak.idle_release import IdleRelease
from agent.speak.pipeline import SpeakFailed, SpeakJob, SpeakResult, run_speak
from agent.speak.progress import Heartbeats
from agent.speak.remote import RemoteSpeech
from agent.speak.requests import SpeakRequest
from providers import registry
from providers.base import VOICE_CODES, AudioChunk
from providers.common.process import release_free_memory

log = logging.getLogger(__name__)


class AudioOut(Protocol):
    """Where a request's audio goes, in the request's ``format`` (agent/speak/delivery.py): each
    sentence as soon as it is ready when streaming, else the whole utterance once; a complete file
    each time, or, for an out whose ``continuous`` attribute is True, the pieces of one stream.
    Hermes, Wyoming and the CLI never ask for a format: theirs is WAV. ``request_id`` is the one the answer carries.
    ``chunk`` may raise ``ServiceError`` when the audio has nowhere to go any more (the door's
    client has gone): the request stops there, before its next sentence, and fails with that code.
    The worker also asks a ``departure.ClientAudio`` before each chunk it makes: a request that is
    not streamed stops too."""

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None: ...

    def whole(self, request_id: str, wav: bytes) -> None: ...

    def where(self, request_id: str, stream: bool) -> str:
        """What ``speak.finished`` reports as ``audio_topic``."""
        ...


class VoiceHeard(Protocol):
    """An ``AudioOut`` that wants to know who speaks before the first streamed chunk (``begin``:
    ``provider``, ``voice``, ``cached``, ``fallback``, ``fallback_code``), as HTTP sends its
    headers then. Optional: the service asks with ``getattr``."""

    def begin(self, request_id: str, speaker: dict[str, Any]) -> None: ...


@dataclass
class _Pending:
    job: SpeakJob
    out: AudioOut
    future: Future[dict[str, Any]]


class SpeakService:
    def __init__(
        self,
        layout: Layout,
        configs: ConfigStore,
        engines: ProviderPool,
        events: EventBus,
        state: StateBoard,
        queue_depth: int,
        max_text_chars: int,
        max_audio_seconds: float,
        heartbeats: Heartbeats | None = None,
        voice_ready: Callable[..., None] | None = None,  # (profile, provider, voice, *, beat)
        remote: RemoteSpeech | None = None,
        release_after: float | None = None,
    ) -> None:
        """``heartbeats``: whose clock judges progress (tests hand in their own); ``voice_ready``:
        fetches a catalog voice a request names that is not installed (agent/voices); ``remote``: other
        nodes' engines, for the providers a profile's ``runOn`` sends elsewhere (agent/speak/remote.py);
        ``release_after``: seconds of no speech after which the engines hand back the buffers they
        keep for the next sentence (agent/speak/idle_release.py); None: they keep them."""
        self._voice_ready = voice_ready
        self._remote = remote
        self._layout = layout
        self._configs = configs
        self._engines = engines
        self._events = events
        self._state = state
        self._queue_depth = queue_depth
        self._max_text_chars = max_text_chars
        self._budget = AudioBudget(max_audio_seconds)
        self._queues: dict[str, queue.Queue[_Pending | None]] = {}
        self._workers: list[threading.Thread] = []
        self._caches: dict[str, tuple[CacheConfig, AudioCache]] = {}
        self._heartbeats = heartbeats or Heartbeats()  # the request being spoken per profile, and its last progress
        self._voice_errors: dict[str, dict[str, str]] = {}  # profile -> why its configured voice does not speak
        self._lock = threading.Lock()
        self._idle: IdleRelease | None = None
        if release_after is not None:
            self._idle = IdleRelease(self._release_memory, release_after).start()

    def _release_memory(self) -> None:
        self._engines.release_memory()
        release_free_memory()

    # -- called by the edges: must not block --------------------------------------------
    def submit(self, profile: str, request: SpeakRequest, out: AudioOut,
               trial: dict[str, Any] | None = None) -> Future[dict[str, Any]]:
        """Queue a request; ``trial``: voice.json changes it is said with, for itself only (a
        trained voice listened to before it is chosen)."""
        if len(request.text) > self._max_text_chars:
            raise ServiceError(
                "text_too_long", f"text has {len(request.text)} characters; the limit is {self._max_text_chars}"
            )
        if not request.text.strip():
            raise ServiceError("invalid_payload", "text: must contain something to say")
        job = SpeakJob(
            id=request.id or uuid.uuid4().hex[:12],
            text=request.text,
            provider=request.provider,
            voice=request.voice,
            speed=request.speed,
            stream=request.stream,
            received=time.perf_counter(),
            lang=request.lang,
            speaker=request.speaker,
            trial=trial or None,
            format=request.format,
        )
        pending = _Pending(job, out, Future())
        try:
            self._queue(profile).put_nowait(pending)
        except queue.Full:
            raise ServiceError(
                "busy", f"profile {profile!r} already has {self._queue_depth} speak requests waiting"
            ) from None
        self._publish_state(profile)
        return pending.future

    def queue_depth(self, profile: str) -> int:
        """Requests accepted and not yet answered: waiting plus the one being spoken."""
        with self._lock:
            q = self._queues.get(profile)
        return (q.qsize() if q else 0) + int(self._heartbeats.working(profile))

    def stalled(self, limit_seconds: float) -> list[str]:
        """Profiles whose request has made no audio for ``limit_seconds``, and dead workers."""
        with self._lock:
            dead = [w.name for w in self._workers if not w.is_alive()]
        return self._heartbeats.stuck(limit_seconds) + dead

    def stop(self) -> None:
        with self._lock:
            queues = list(self._queues.values())
        for q in queues:
            while True:  # refuse what is still waiting: every request gets its one response
                try:
                    pending = q.get_nowait()
                except queue.Empty:
                    break
                if pending is not None:
                    pending.future.set_exception(ServiceError("shutting_down", "the agent is stopping"))
            q.put(None)
        for worker in self._workers:
            worker.join(timeout=30)
        if self._idle is not None:
            self._idle.stop()
        for profile in list(self._queues):
            self._publish_state(profile)

    def preload(self, profile: str) -> None:
        """Load the profile's default voice now so its first request is fast, and learn whether it
        can speak at all (a voice that is missing or cannot load is the profile's ``voice_error``)."""
        config = self._configs.get(profile)
        name = config.tts.provider
        chosen = config.tts.settings_for(name).voice_chosen
        settings = config.tts.settings_for(name).for_text("")
        try:
            self._engines.get(name).preload(settings, self._layout.provider_context(profile))
        except Exception as exc:
            log.warning("could not preload %s for %s: %s", name, profile, exc)
            # a voice the provider picks itself (Kokoro's per language) is no error of the profile's until a text needs it
            code = getattr(exc, "code", "") if chosen else ""
            self._voice_outcome(profile, name, settings.voice_name, code, str(exc))
        else:
            self._voice_outcome(profile, name, settings.voice_name, "", "")
        self._publish_state(profile)

    def voice_errors(self) -> dict[str, dict[str, str]]:
        """Profiles whose configured voice does not speak, and why (``/api/health``)."""
        with self._lock:
            return {profile: dict(error) for profile, error in self._voice_errors.items()}

    def _voice_outcome(self, profile: str, provider: str, voice: str, code: str, message: str) -> None:
        """What the profile's configured voice did: a voice-level failure (``VOICE_CODES``) is kept
        until the voice speaks again; any other outcome says nothing about the voice."""
        with self._lock:
            if code in VOICE_CODES:
                self._voice_errors[profile] = {"code": code, "provider": provider, "voice": voice, "message": message}
            elif not code:
                self._voice_errors.pop(profile, None)

    # -- worker side ---------------------------------------------------------------------
    def _queue(self, profile: str) -> queue.Queue[_Pending | None]:
        with self._lock:
            q = self._queues.get(profile)
            if q is None:
                q = queue.Queue(maxsize=self._queue_depth)
                self._queues[profile] = q
                worker = threading.Thread(target=self._work, args=(profile, q), name=f"speak-{profile}", daemon=True)
                self._workers.append(worker)
                worker.start()
            return q

    def _work(self, profile: str, q: queue.Queue[_Pending | None]) -> None:
        while True:
            pending = q.get()
            if pending is None:
                return
            self._heartbeats.begin(profile)
            if self._idle is not None:
                self._idle.begin()
            try:
                summary, keep = self._speak(profile, pending.job, pending.out)
            except BaseException as exc:
                pending.future.set_exception(exc)
            else:
                pending.future.set_result(summary)  # the answer leaves (the doors' callbacks)
                try:
                    keep()  # then the cache's copies: their fsync is on nobody's wait
                except Exception:  # a cache's bug must not take the worker down
                    log.exception("could not cache audio")
            finally:
                self._heartbeats.end(profile)
                release_free_memory()  # a long text's buffers must not stay the agent's RSS
                if self._idle is not None:
                    self._idle.end()
                self._publish_state(profile)

    def _cache(self, profile: str, config: CacheConfig) -> AudioCache | None:
        if not config.enabled:
            return None
        with self._lock:
            known = self._caches.get(profile)
            if known is not None and known[0] == config:
                return known[1]
        cache = AudioCache(self._layout.under_profile(profile, config.directory), int(config.max_size_mb * 1024 * 1024))
        with self._lock:
            self._caches[profile] = (config, cache)
        return cache

    def _speak(self, profile: str, job: SpeakJob, out: AudioOut) -> tuple[dict[str, Any], Callable[[], None]]:
        """The request's summary, and what it leaves in the cache, to be written after the answer."""
        config = self._configs.get(profile)
        if job.trial:
            config = tried(config, job.trial)
        provider = job.provider or config.tts.provider
        self._events.emit(profile, "speak.started", {"id": job.id, "provider": provider, "stream": job.stream})

        cache = self._cache(profile, config.cache)
        delivery = Delivery(out, job, cache)

        def on_chunk(seq: int, chunk: AudioChunk) -> None:
            delivery.sentence(chunk)

        fell_back: list[str] = []  # the fallback's code, once one was announced

        def on_fallback(failed: str, reason: str, code: str, to: str = "piper") -> None:
            fell_back[:] = [code]
            self._events.emit(profile, "provider.fallback",
                              {"id": job.id, "from": failed, "to": to, "reason": reason, "code": code})

        remote = self._remote
        run_on = config.run_on

        def on_voice(provider: str, voice: str, cached: bool) -> None:
            begin = getattr(out, "begin", None)
            if begin is not None:
                begin(job.id, {"provider": provider, "voice": voice, "cached": cached, "fallback": bool(fell_back),
                               "fallback_code": fell_back[0] if fell_back else None})

        def on_progress() -> None:
            self._heartbeats.beat(profile)
            check_client(out)  # a client that has left: stop now, whether its audio streams or not

        try:
            result = run_speak(
                job,
                config,
                self._layout.provider_context(profile),
                self._engines,
                cache,
                on_chunk,
                on_fallback,
                budget=self._budget,
                on_progress=on_progress,
                on_voice=on_voice,
                remote=None if remote is None or not run_on.speak else lambda name: remote.pick(run_on.speak_on(name), name),
                voice_ready=None if self._voice_ready is None else functools.partial(
                    self._voice_ready, profile, beat=lambda: self._heartbeats.beat(profile)),  # a wait is no hang
            )
        except SpeakFailed as exc:
            self._events.emit(profile, "speak.failed", {"id": job.id, "provider": exc.provider, "error": str(exc), "code": exc.code})
            if self._configured(job, config.tts.provider) and exc.code in VOICE_CODES:
                self._voice_outcome(profile, provider, config.tts.settings_for(provider).voice_name, exc.code, str(exc))
            raise ServiceError(exc.code, str(exc)) from exc
        except ServiceError as exc:  # the AudioOut refused the audio
            self._events.emit(profile, "speak.failed", {"id": job.id, "provider": provider, "error": str(exc), "code": exc.code})
            raise
        if self._configured(job, config.tts.provider):
            voice = config.tts.settings_for(provider).for_text(job.text).voice_name
            self._voice_outcome(profile, provider, voice, result.fallback_code or "", result.fallback_reason or "")
        try:
            delivery.done(result)
        except ServiceError as exc:  # the AudioOut refused the audio
            self._events.emit(profile, "speak.failed", {"id": job.id, "provider": provider, "error": str(exc), "code": exc.code})
            raise
        summary = self._summary(job, result, out.where(job.id, job.stream))
        self._events.emit(profile, "speak.finished", summary)
        return summary, functools.partial(delivery.keep, result)

    @staticmethod
    def _configured(job: SpeakJob, provider: str) -> bool:
        """Whether the request speaks with the profile's own voice (names no other provider or voice)."""
        return job.trial is None and job.voice is None and (job.provider is None or registry.canonical(job.provider) == provider)

    def _summary(self, job: SpeakJob, result: SpeakResult, where: str) -> dict[str, Any]:
        return {
            "id": job.id,
            "provider": result.provider,
            "voice": result.voice,
            "cached": result.cached,
            "fallback": result.fallback_reason is not None,
            "fallback_reason": result.fallback_reason,
            "fallback_code": result.fallback_code,
            "audio_seconds": round(result.seconds, 3),
            "sample_rate": result.sample_rate,
            "latency_ms": round((time.perf_counter() - job.received) * 1000, 1),
            "first_audio_ms": round(result.first_audio_ms, 1),
            "stream": job.stream,
            "chunks": result.chunks,
            "audio_topic": where,
            "format": job.format,
            "content_type": audio_format(job.format).media_type,
            "node": result.node,
        }

    def _publish_state(self, profile: str) -> None:
        config = self._configs.get(profile)
        name = config.tts.provider
        self._state.update(
            profile,
            provider=name,
            voice=config.tts.settings_for(name).voice_name,
            queue_depth=self.queue_depth(profile),
            config_error=self._configs.error(profile),
            voice_error=self.voice_errors().get(profile),
        )


def tried(config: VoiceConfig, changes: dict[str, Any]) -> VoiceConfig:
    """The profile's config with ``changes`` on top, for one request; changes it cannot take are
    refused as a config.set of them would be."""
    try:
        return VoiceConfig.model_validate(deep_merge(config.model_dump(mode="json", by_alias=True), changes))
    except ValidationError as exc:
        raise ServiceError("invalid_config", f"the trained voice's settings do not validate: {describe_validation_error(exc)}") from exc
