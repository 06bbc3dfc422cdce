"""Scoring work that runs in a separate, low-priority process.

Models (DNSMOS, Resemblyzer and so torch) live only in that process: the agent stays small,
a crash there cannot take the agent down, and its CPU use never holds the agent's GIL, so
speech stays fast while a flood of recordings is scored.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
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

    def close(self) -> None: ...


class AnalysisWorker:
    """One low-priority process holding the models, started on first use and again after a crash."""

    def __init__(self, timeout: float = 600.0) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._timeout = timeout

    def score_wav(self, data: bytes, options: AnalysisOptions) -> Analysis:
        return self._run(score_wav, data, options)  # type: ignore[no-any-return]

    def score_utterances(self, utterances: list[Utterance], options: AnalysisOptions) -> list[Scored]:
        return self._run(score_utterances, utterances, options)  # type: ignore[no-any-return]

    def embed_wav(self, data: bytes, vad: VadOptions) -> np.ndarray:
        return self._run(embed_wav, data, vad)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _run(self, fn: Any, *args: Any) -> Any:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), initializer=_init_worker)
        try:
            return self._pool.submit(fn, *args).result(timeout=self._timeout)
        except BrokenProcessPool:
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
