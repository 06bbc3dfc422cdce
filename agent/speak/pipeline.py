"""One speak request, start to finish: cache, provider, Piper fallback, streamed chunks.

Pure orchestration with callbacks for output, so it runs the same in the agent and in tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from agent.config.model import VoiceConfig
from agent.errors import ServiceError
from agent.requests import describe_validation_error
from agent.speak.budget import AUDIO_TOO_LONG, AudioBudget, AudioTooLong
from agent.speak.cache import AudioCache
from agent.speak.engines import ProviderPool
from agent.nodes.placement import REMOTE_CODES
from agent.speak.text import pieces
from providers.base import VOICE_CODES, AudioChunk, Provider, ProviderContext, ProviderError, VoiceNotFoundError
from providers.piper.config import DEFAULT_PIPER_VOICE, PiperSettings
from providers.settings_base import ProviderSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeakJob:
    id: str
    text: str
    provider: str | None  # a provider's name (validated), or None for the profile's
    voice: str | None
    speed: float | None
    stream: bool
    received: float  # time.perf_counter() when the request arrived
    lang: str | None = None  # the text's language, for providers that speak several
    speaker: str | None = None  # a multi-speaker voice's speaker, by name
    trial: dict[str, Any] | None = None  # voice.json changes said with for this request only (a trained voice)
    format: str = "wav"  # the format the door gets (agent/speak/encoding.py): the service encodes, not the pipeline


@dataclass
class SpeakResult:
    provider: str
    voice: str
    pcm: bytes
    sample_rate: int
    cached: bool
    chunks: int
    first_audio_ms: float
    fallback_reason: str | None = None  # why another voice spoke: the failure's message
    fallback_code: str | None = None  # and its code (voice_downloading, voice_not_found, voice_unavailable, a provider's)
    cache_key: str | None = None  # the utterance's cache key: its encoded forms are kept under it too
    node: str | None = None  # the worker node that made it (None: this one)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


ChunkSink = Callable[[int, AudioChunk], None]
FallbackNotice = Callable[..., None]  # (failed provider, reason, its code[, to: who speaks instead, "piper" when not said])
RemotePick = Callable[[str], "Provider | None"]  # provider -> the engine of the node its profile's runOn names, None: here
Progress = Callable[[], None]  # told of each chunk an engine makes (the watchdog's sign of life)
VoiceNotice = Callable[[str, str, bool], None]  # (provider, voice, cached): who speaks, before the first streamed chunk
VoiceReady = Callable[[str, str], None]  # (provider, voice): returns once usable, else ServiceError (agent/voices)
# A voice that is being fetched, or may not be: the request is answered by the fallback, even a Piper one.
DOWNLOAD_CODES = ("voice_downloading", "downloads_off", "voice_download_failed", "disk_full")


def _no_progress() -> None:
    pass


def _no_notice(provider: str, voice: str, cached: bool) -> None:
    pass


class SpeakFailed(Exception):
    def __init__(self, message: str, code: str, provider: str) -> None:
        super().__init__(message)
        self.code = code
        self.provider = provider


def run_speak(
    job: SpeakJob,
    config: VoiceConfig,
    ctx: ProviderContext,
    engines: ProviderPool,
    cache: AudioCache | None,
    on_chunk: ChunkSink,
    on_fallback: FallbackNotice,
    *,
    budget: AudioBudget,
    on_progress: Progress = _no_progress,
    voice_ready: VoiceReady | None = None,
    on_voice: VoiceNotice = _no_notice,
    remote: RemotePick | None = None,
) -> SpeakResult:
    """The request's audio, from the cache or an engine, or ``SpeakFailed``. Audio over the
    ``budget`` is refused, never handed to Piper instead: Piper would make as much. A catalog
    voice that is not installed is fetched first (``voice_ready``, bounded wait); one still coming
    is answered by Piper (its profile voice, or the bundled one when that is the voice coming).
    ``on_voice`` hears which voice speaks just before the first streamed chunk: a door that sends
    its headers then (HTTP) can name it, since nothing falls back once audio went out. A cache hit
    is not handed to ``on_chunk``: the caller sends it whole, in its format as the cache keeps it
    (``result.cached``, ``result.cache_key``). ``remote``: the engine of another node when the
    profile's ``runOn`` sends the provider there; when that node cannot make it (``REMOTE_CODES``)
    this node makes it, then Piper, as for any failure."""
    name = job.provider or config.tts.provider
    try:
        settings = config.tts.settings_for(name).with_request(job.voice, job.speed, job.lang)
        if job.speaker is not None:
            settings = settings.with_speaker(job.speaker)
    except ValueError as exc:  # pydantic's ValidationError too
        why = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise SpeakFailed(f"not a valid {name} request: {why}", "invalid_payload", name) from exc
    settings = settings.for_text(job.text)
    synthesis = _Synthesis(job, ctx, engines, cache, on_chunk, budget, on_progress, on_voice, remote)
    try:
        if voice_ready is not None:
            _fetched(voice_ready, name, settings.voice_name)
        return _here_when_remote_fails(synthesis, name, settings, on_fallback)
    except _Failure as failure:
        fetching = failure.code in DOWNLOAD_CODES
        if name == "piper":  # Piper's own settings never fall back to another provider, only to its bundled voice
            if not fetching and (job.voice is not None or not _bundled_may_stand_in(failure, settings)):
                raise SpeakFailed(str(failure), failure.code, name) from failure
            on_fallback(name, str(failure), failure.code)  # its voice is missing, broken, or being fetched
            return _bundled(synthesis, settings, str(failure), failure.code)
        asked_missing = job.voice is not None and failure.code == VoiceNotFoundError.code  # a typo, as for Piper
        if failure.code == AUDIO_TOO_LONG or not (settings.fallback_to_piper or fetching) or failure.chunks_sent \
                or asked_missing:
            raise SpeakFailed(str(failure), failure.code, name) from failure
        reason, code = str(failure), failure.code
    on_fallback(name, reason, code)
    piper = config.tts.settings_for("piper").with_request(None, job.speed)
    try:
        result = synthesis.run("piper", piper)
    except _Failure as failure:
        if not _bundled_may_stand_in(failure, piper):
            raise SpeakFailed(f"{reason}; Piper fallback failed too: {failure}", failure.code, "piper") from failure
        return _bundled(synthesis, piper, f"{reason}; Piper's voice failed too: {failure}", code)
    result.fallback_reason, result.fallback_code = reason, code
    return result


def _here_when_remote_fails(synthesis: _Synthesis, name: str, settings: ProviderSettings,
                            on_fallback: FallbackNotice) -> SpeakResult:
    """The audio, from the node ``runOn`` names, else (it is lost, absent, failed, and no audio went
    out) from this node's own engine, the reason kept; a failure here too keeps the remote code."""
    try:
        return synthesis.run(name, settings)
    except _Failure as failure:
        if failure.code not in REMOTE_CODES or failure.chunks_sent or synthesis.remote is None:
            raise
        log.warning("speak %s: %s (%s); %s speaks here", synthesis.job.id, failure, failure.code, name)
        on_fallback(name, str(failure), failure.code, name)
        try:
            result = replace(synthesis, remote=None).run(name, settings)
        except _Failure as local:
            raise _Failure(f"{failure}; {name} here failed too: {local}", failure.code, local.chunks_sent) from local
        result.fallback_reason, result.fallback_code = str(failure), failure.code
        return result


def _bundled_may_stand_in(failure: _Failure, settings: ProviderSettings) -> bool:
    """Whether the bundled Piper voice speaks instead: the configured Piper voice itself is missing
    or cannot load (not the engine, not the text), another voice is configured, and no audio went out."""
    assert isinstance(settings, PiperSettings)
    return failure.code in VOICE_CODES and settings.model != DEFAULT_PIPER_VOICE and not failure.chunks_sent


def _bundled(synthesis: _Synthesis, settings: ProviderSettings, reason: str, code: str) -> SpeakResult:
    """The request spoken by the voice that ships with the package, and why."""
    bundled = settings.updated(model=DEFAULT_PIPER_VOICE, speaker_id=None, speaker=None)
    try:
        result = synthesis.run("piper", bundled)
    except _Failure as failure:
        raise SpeakFailed(f"{reason}; the bundled Piper voice failed too: {failure}", failure.code, "piper") from failure
    result.fallback_reason, result.fallback_code = reason, code
    return result


def _fetched(voice_ready: VoiceReady, provider: str, voice: str) -> None:
    try:
        voice_ready(provider, voice)
    except ServiceError as exc:
        raise _Failure(str(exc), exc.code) from exc


class _Failure(Exception):
    def __init__(self, message: str, code: str, chunks_sent: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.chunks_sent = chunks_sent


@contextmanager
def _closing(chunks: Iterator[AudioChunk]) -> Iterator[Iterator[AudioChunk]]:
    """An engine's chunks, closed as soon as the request stops taking them: a generator then
    frees what it holds now (Piper hands its arena back), not whenever the traceback that
    references it is collected, which is after the worker has trimmed the heap."""
    try:
        yield chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _dropped(parts: list[bytes], stream: bool) -> int:
    """How many chunks were sent, the audio made so far let go: the failure's traceback holds
    this frame for as long as the answer is kept."""
    sent = len(parts) if stream else 0
    parts.clear()
    return sent


@dataclass(frozen=True)
class _Synthesis:
    """One request's synthesis, whichever provider makes it: the cache, the engine, the budget."""

    job: SpeakJob
    ctx: ProviderContext
    engines: ProviderPool
    cache: AudioCache | None
    on_chunk: ChunkSink
    budget: AudioBudget
    on_progress: Progress
    on_voice: VoiceNotice
    remote: RemotePick | None = None

    def run(self, name: str, settings: ProviderSettings) -> SpeakResult:
        job = self.job
        try:
            self.budget.check_text(job.text, settings.pace)
        except AudioTooLong as exc:
            raise _Failure(str(exc), exc.code) from exc
        if self.cache is not None:
            try:
                key = f"{settings.cache_key()}@{self.engines.get(name).asset_tag(settings, self.ctx)}"
            except ProviderError as exc:
                raise _Failure(str(exc), exc.code) from exc
            hit = self.cache.get(key, job.text)
            if hit is not None:
                first_ms = (time.perf_counter() - job.received) * 1000
                if job.stream:
                    self.on_voice(name, settings.voice_name, True)
                return SpeakResult(name, settings.voice_name, hit.pcm, hit.sample_rate, True, 1, first_ms, cache_key=key)
        parts: list[bytes] = []
        rate = 0
        made = 0  # samples so far
        first_ms = 0.0
        elsewhere = None
        try:
            provider = self.engines.get(name)
            elsewhere = self.remote(name) if self.remote is not None and name != "piper" else None
            if elsewhere is not None:
                provider = elsewhere
            for index, piece in enumerate(pieces(job.text)):  # an engine never gets more than a short paragraph at once
                ctx = replace(self.ctx, listener_waits=job.stream and index == 0)  # later pieces are made while it plays
                with _closing(provider.synthesize(piece, settings, ctx)) as made_now:
                    for chunk in made_now:
                        if rate and chunk.sample_rate != rate:
                            raise ProviderError(f"{name} changed sample rate mid-utterance ({rate} -> {chunk.sample_rate})")
                        made += len(chunk.pcm) // 2
                        self.budget.check_made(made, chunk.sample_rate)  # before the chunk goes anywhere
                        self.on_progress()
                        if not parts:
                            first_ms = (time.perf_counter() - job.received) * 1000
                        rate = chunk.sample_rate
                        if job.stream:
                            if not parts:
                                self.on_voice(name, settings.voice_name, False)
                            self.on_chunk(len(parts), chunk)
                        parts.append(chunk.pcm)
        except ServiceError:  # the door's AudioOut refused the audio (its client has gone): stop here
            raise
        except (ProviderError, AudioTooLong) as exc:
            raise _Failure(str(exc), exc.code, _dropped(parts, job.stream)) from exc
        except Exception as exc:  # an engine bug must not take the worker down
            log.exception("provider %s crashed", name)
            sent = _dropped(parts, job.stream)
            raise _Failure(f"{name} failed: {type(exc).__name__}: {exc}", "provider_error", sent) from exc
        if not parts:
            raise _Failure(f"{name} produced no audio for this text", "no_audio")
        chunks, pcm = len(parts), b"".join(parts)
        del parts  # the utterance is held once, not twice, while it is sent and then cached
        return SpeakResult(name, settings.voice_name, pcm, rate, False, chunks, first_ms,
                           cache_key=key if self.cache is not None else None, node=getattr(elsewhere, "ran_on", None))
