"""Scoring work that runs in a separate, low-priority process.

Models (DNSMOS, Resemblyzer and so torch) live only in that process: the agent stays small,
a crash there cannot take the agent down, and its CPU use never holds the agent's GIL, so
speech stays fast while a flood of recordings is scored.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from agent.record.decode import ANALYSIS_RATE, decode_wav
from agent.record.quality import Measurements, measure, score
from agent.record.recognise import Recogniser
from agent.record.vad import Utterance, VadOptions, segment
from providers.common.process import follow_parent

log = logging.getLogger(__name__)

NICENESS = 10
THREADS = 1  # leave the other core to speech


@dataclass(frozen=True)
class AnalysisOptions:
    vad: VadOptions
    dnsmos: bool
    reference: np.ndarray | None  # the profile's voice embedding, when known
    min_similarity: float
    transcript: str | None = None  # what was said: a lone utterance's words are heard to check it


@dataclass(frozen=True)
class Scored:
    samples: np.ndarray  # float32, 16 kHz
    start: float
    score: float
    components: dict[str, float]
    measurements: Measurements
    reasons: list[str]
    embedding: np.ndarray
    codes: list[str] = field(default_factory=list)  # the reasons as codes
    heard: str | None = None  # the words PocketSphinx heard (a transcript's check), when it ran


@dataclass(frozen=True)
class Analysis:
    seconds: float
    utterances: list[Scored]
    dropped: list[tuple[float, str]]


class _Models:
    """Loaded once per worker process."""

    def __init__(self) -> None:
        from agent.record.dnsmos import Dnsmos
        from agent.record.speaker import SpeakerEncoder

        self.dnsmos = Dnsmos(threads=THREADS)
        self.speaker = SpeakerEncoder(threads=THREADS)
        self._recogniser: Recogniser | None = None
        self._no_recogniser = False

    def hear(self, samples: np.ndarray) -> str | None:
        """The words in ``samples``; None without PocketSphinx (the transcript stays unchecked)."""
        if self._recogniser is None and not self._no_recogniser:
            try:
                self._recogniser = Recogniser()
            except ImportError:
                log.warning("pocketsphinx is not installed: transcripts are not checked against the words said")
                self._no_recogniser = True
        return self._recogniser(samples) if self._recogniser is not None else None


_models: _Models | None = None  # the worker process's own models (one process, one set)


def _init_worker() -> None:
    os.nice(NICENESS)
    os.environ["OMP_NUM_THREADS"] = str(THREADS)
    follow_parent(lambda: os._exit(0))  # an agent killed with -9 takes its models with it


def _get_models() -> _Models:
    global _models
    if _models is None:
        _models = _Models()
    return _models


def score_utterance(utterance: Utterance, options: AnalysisOptions) -> Scored:
    from agent.record.speaker import similarity

    models = _get_models()
    m = measure(utterance)
    embedding = models.speaker.embed(utterance.samples)
    sim = similarity(embedding, options.reference) if options.reference is not None else None
    m = replace(m, speaker_similarity=sim)
    preliminary = score(m, options.min_similarity)
    if options.dnsmos and not preliminary.reasons:  # no need to grade audio already refused
        m = replace(m, dnsmos=models.dnsmos(utterance.samples))
    result = score(m, options.min_similarity)
    return Scored(utterance.samples, utterance.start, result.total, result.components, m, result.reasons, embedding,
                  result.codes)


def check_words(scored: list[Scored], options: AnalysisOptions) -> list[Scored]:
    """Hear the words of a lone utterance that comes with a transcript (only then is the
    transcript stored) and is not refused already; the others as they are."""
    if options.transcript is None or len(scored) != 1 or scored[0].reasons:
        return scored
    return [replace(scored[0], heard=_get_models().hear(scored[0].samples))]


def score_wav(data: bytes, options: AnalysisOptions) -> Analysis:
    audio = decode_wav(data, ANALYSIS_RATE)
    utterances, segmenter = segment(audio.samples, options.vad)
    return Analysis(audio.seconds, check_words([score_utterance(u, options) for u in utterances], options),
                    segmenter.dropped)


def score_utterances(utterances: list[Utterance], options: AnalysisOptions) -> list[Scored]:
    return check_words([score_utterance(u, options) for u in utterances], options)


class AnalysisFailed(Exception):
    """The analysis could not run (its process died, a package is missing); ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Analyser(Protocol):
    """What the record service needs scored; ``AnalysisWorker`` does it in its own process."""

    def score_wav(self, data: bytes, options: AnalysisOptions) -> Analysis: ...

    def score_utterances(self, utterances: list[Utterance], options: AnalysisOptions) -> list[Scored]: ...

    def embed_wav(self, data: bytes, vad: VadOptions) -> np.ndarray: ...

    def take_warmup(self) -> float | None: ...

    def close(self) -> None: ...


def warm_up() -> None:
    """Load the models (the first call in a fresh process), so the warm-up is timed on its own."""
    _get_models()


class AnalysisWorker:
    """One low-priority process holding the models, started on first use and again after a crash.

    Its models (torch, DNSMOS, Resemblyzer) keep it at about 850 MB resident; after
    ``idle_seconds`` without work it exits and gives that back, and the next recording starts it
    again (a warm-up of a few seconds, said by ``take_warmup``). ``idle_seconds`` 0 keeps it for
    the agent's life: no warm-up ever again, the memory never returned."""

    def __init__(self, timeout: float = 600.0, idle_seconds: float = 120.0,
                 warm: Callable[[], object] = warm_up) -> None:
        self._warm = warm  # what a fresh process does first: load the models
        self._pool: ProcessPoolExecutor | None = None
        self._timeout = timeout
        self._idle = idle_seconds
        self._lock = threading.Lock()  # the pool, the count of calls in flight, the idle timer
        self._busy = 0
        self._used = time.monotonic()
        self._timer: threading.Timer | None = None
        self._warmup: float | None = None  # the last start's warm-up, until a result takes it

    @property
    def running(self) -> bool:
        """Whether the process (and its models) is up now."""
        with self._lock:
            return self._pool is not None

    def take_warmup(self) -> float | None:
        """Seconds the last start of the process took to load its models, once: the first result
        after a start says it, the next ones do not."""
        with self._lock:
            warmup, self._warmup = self._warmup, None
        return warmup

    def score_wav(self, data: bytes, options: AnalysisOptions) -> Analysis:
        return self.run(score_wav, data, options)  # type: ignore[no-any-return]

    def score_utterances(self, utterances: list[Utterance], options: AnalysisOptions) -> list[Scored]:
        return self.run(score_utterances, utterances, options)  # type: ignore[no-any-return]

    def embed_wav(self, data: bytes, vad: VadOptions) -> np.ndarray:
        return self.run(embed_wav, data, vad)  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _start(self) -> ProcessPoolExecutor:
        """The running pool, or a new one with its models loaded (the warm-up, timed)."""
        with self._lock:
            self._busy += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            pool = self._pool
            if pool is None:
                pool = self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                                        initializer=_init_worker)
                fresh = True
            else:
                fresh = False
        if fresh:
            began = time.monotonic()
            pool.submit(self._warm).result(timeout=self._timeout)
            with self._lock:
                self._warmup = round(time.monotonic() - began, 2)
            log.info("analysis process started: its models loaded in %.1f s", time.monotonic() - began)
        return pool

    def _done(self) -> None:
        """A call ended: when none is left, the process exits after ``idle_seconds`` more without one."""
        with self._lock:
            self._busy -= 1
            self._used = time.monotonic()
            if self._busy or self._idle <= 0 or self._pool is None:
                return
            self._timer = threading.Timer(self._idle, self._stop_if_idle)
            self._timer.daemon = True
            self._timer.start()

    def _stop_if_idle(self) -> None:
        with self._lock:
            idle = time.monotonic() - self._used
            if self._busy or self._pool is None or idle < self._idle:
                return
            pool, self._pool, self._timer = self._pool, None, None
        pool.shutdown(wait=True)  # the process exits: its memory is the system's again
        log.info("analysis process stopped after %.0f s without recordings; it starts again on the next one", idle)

    def run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in the analysis process (started first when it is not running)."""
        try:
            try:
                pool = self._start()
                return pool.submit(fn, *args).result(timeout=self._timeout)
            finally:
                self._done()
        except BrokenProcessPool:
            with self._lock:
                self._pool = None  # a fresh process next time
            raise AnalysisFailed("analysis_failed", "the analysis process died (out of memory?); try again") from None
        except ImportError as exc:
            raise AnalysisFailed(
                "record_unavailable",
                f"the record path needs {exc.name}: pip install 'voice-agent[record]' && "
                "pip install --no-deps resemblyzer==0.1.4",
            ) from exc


def embed_wav(data: bytes, vad: VadOptions) -> np.ndarray:
    """The speaker embedding of the speech in a recording (for enrolling the owner's voice)."""
    audio = decode_wav(data, ANALYSIS_RATE)
    utterances, _ = segment(audio.samples, vad)
    speech = np.concatenate([u.samples for u in utterances]) if utterances else audio.samples
    if len(speech) < ANALYSIS_RATE:
        raise ValueError("need at least one second of speech to enroll a voice")
    return _get_models().speaker.embed(speech)
