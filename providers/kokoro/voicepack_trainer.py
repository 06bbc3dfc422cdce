"""Train a Kokoro voicepack from the owner's samples (the seed's "Train Kokoro Voicepack").

Implements ``agent.train.base.Trainer``: the job runner calls ``run`` in a subprocess. The
search itself is in ``providers.kokoro.walk``; this module reads the dataset, checks it is
enough, checkpoints the best voicepack (atomically) and resumes from it.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from agent.train.base import Progress, Report, ShouldStop, TrainResult, TrainSpec
from providers.base import ProviderContext
from providers.kokoro.config import KokoroSettings, LangCode
from providers.kokoro.engine import KokoroProvider
from providers.kokoro.voices import VoiceLibrary, load_voicepack, save_voicepack
from providers.kokoro.walk import (
    Score,
    Scorer,
    SpeakerEmbedder,
    adapt_step,
    blends,
    mean_direction,
    propose,
    style_spread,
    voice_features,
)

log = logging.getLogger(__name__)

DEFAULT_LINES = (
    "The weather today is mild, with a light breeze from the west.",
    "Could you remind me to call the plumber tomorrow morning?",
    "The library closes early on public holidays this year.",
)
CHECKPOINT_EVERY_S = 30.0


class DatasetError(ValueError):
    """The dataset cannot train a voicepack; the message says what is missing."""


class VoicepackParams(BaseModel):
    """The seed's training parameters, with their ranges (camelCase or snake_case keys)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    base_voice: str = Field("auto", min_length=1, description="Start voice or blend; auto = the stock voice or blend closest to the target.")
    epochs: int = Field(200, ge=1, le=20000, description="Search iterations (one candidate voice each).")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0, description="Step size per style value, in standard deviations of the stock voices.")
    device: Literal["cpu", "cuda"] = Field("cpu", description="Where the speaker encoder runs (synthesis is ONNX on the CPU).")
    max_samples: int = Field(20, ge=1, le=1000, description="Target samples used to describe the voice.")
    lang_code: LangCode = Field("a", description="Language the voicepack is tuned to speak.")
    voices_path: str = Field("", description="A voices-v1.0.bin whose voices join the starting set (as tts.kokoro.voicesPath).")
    lines: int = Field(3, ge=1, le=8, description="Sentences each candidate speaks (more: steadier, slower).")
    min_minutes: float = Field(5.0, ge=0.0, le=600.0, description="Refuse datasets with less speech than this.")
    min_samples: int = Field(10, ge=1, le=10000, description="Refuse datasets with fewer WAVs than this.")


@dataclass(frozen=True)
class Sample:
    path: Path
    transcript: str
    seconds: float


def read_dataset(directory: Path) -> list[Sample]:
    """WAVs in ``directory`` with their transcripts from ``metadata.csv`` (``file|text``) if any."""
    import soundfile

    if not directory.is_dir():
        raise DatasetError(f"no dataset at {directory}: export one with `voice-agent samples export kokoro`")
    transcripts: dict[str, str] = {}
    metadata = directory / "metadata.csv"
    if metadata.is_file():
        with metadata.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter="|"):
                if len(row) >= 2:
                    transcripts[row[0]] = row[1].strip()
    samples = []
    for path in sorted(directory.glob("*.wav")):
        try:
            info = soundfile.info(str(path))
        except RuntimeError as exc:
            log.warning("skipping unreadable %s: %s", path.name, exc)
            continue
        samples.append(Sample(path, transcripts.get(path.name, ""), info.frames / info.samplerate))
    return samples


def check_dataset(samples: list[Sample], params: VoicepackParams, directory: Path) -> None:
    minutes = sum(s.seconds for s in samples) / 60
    problems = []
    if len(samples) < params.min_samples:
        problems.append(f"{len(samples)} WAV files, need at least {params.min_samples}")
    if minutes < params.min_minutes:
        problems.append(f"{minutes:.1f} minutes of audio, need at least {params.min_minutes:g}")
    if problems:
        raise DatasetError(f"not enough to train a Kokoro voicepack from {directory}: " + "; ".join(problems) + ". Record more samples.")


class KokoroVoicepackTrainer:
    """Finds the (510, 1, 256) style that makes Kokoro sound most like the dataset's speaker."""

    name = "kokoro"
    params_model = VoicepackParams

    def run(self, spec: TrainSpec, report: Report, should_stop: ShouldStop) -> TrainResult:
        params = VoicepackParams.model_validate(spec.params)
        report(Progress("preparing", 0, params.epochs, message="reading the dataset"))
        samples = read_dataset(spec.dataset_dir)
        check_dataset(samples, params, spec.dataset_dir)
        search = _Search.build(spec, params, samples, report)
        spec.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        state_path = spec.checkpoint_dir / "state.json"
        best_path = spec.checkpoint_dir / "best.npy"
        state = _load_state(state_path)
        if state is not None and best_path.is_file():
            start = dict(state["start"])  # type: ignore[call-overload]
            search.starting_voice(str(start["voice"]))  # the duration guard is relative to the start
            best, step = load_voicepack(best_path), int(state["step"])  # type: ignore[call-overload]
            sigma = float(state.get("sigma", params.learning_rate))  # type: ignore[arg-type]
            best_score = search.score(best)
            log.info("resuming at iteration %d (score %.4f)", step, best_score.total)
        else:
            best, start_name = search.starting_voice(params.base_voice)
            best_score, step, sigma = search.score(best), 0, params.learning_rate
            start = {"voice": start_name, "target": best_score.target, "score": best_score.total}
            _checkpoint(spec, best, step, best_score, start, sigma)
        last_save = time.monotonic()
        while step < params.epochs:
            if should_stop():
                _checkpoint(spec, best, step, best_score, start, sigma)
                return TrainResult("stopped", metrics=_metrics(best_score, start, step))
            rng = np.random.default_rng([spec.seed, step])  # per-iteration: a resumed run repeats the same walk
            candidate = search.propose(best, sigma, rng)
            score = search.score(candidate)
            step += 1
            improved = score.ok and score.total > best_score.total
            if improved:
                best, best_score = candidate, score
            sigma = adapt_step(sigma, improved, params.learning_rate)
            report(Progress("training", step, params.epochs, best=best_score.total,
                            message=f"similarity {best_score.target:.3f} (start {start['target']:.3f})"))
            if time.monotonic() - last_save >= CHECKPOINT_EVERY_S or step == params.epochs:
                _checkpoint(spec, best, step, best_score, start, sigma)
                last_save = time.monotonic()
        report(Progress("exporting", step, params.epochs, best=best_score.total))
        outputs = [spec.output_dir / f"{spec.speaker}.pt", spec.output_dir / f"{spec.speaker}.npy"]
        for path in outputs:
            save_voicepack(best, path)
        return TrainResult("finished", outputs=outputs, metrics=_metrics(best_score, start, step))


def _metrics(score: Score, start: dict[str, object], step: int) -> dict[str, float]:
    return {"similarity": score.target, "consistency": score.consistency, "score": score.total,
            "start_similarity": float(start["target"]), "iterations": float(step)}  # type: ignore[arg-type]


def _checkpoint(spec: TrainSpec, best: np.ndarray, step: int, score: Score, start: dict[str, object], sigma: float) -> None:
    from agent.atomic import atomic_write_text

    save_voicepack(best, spec.checkpoint_dir / "best.npy")  # first, so the state never points ahead of it
    state = {"step": step, "score": score.total, "similarity": score.target, "start": start, "sigma": sigma}
    atomic_write_text(spec.checkpoint_dir / "state.json", json.dumps(state, indent=2) + "\n")


def _load_state(path: Path) -> dict[str, object] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and "step" in state and "start" in state else None


def provider_context(spec: TrainSpec) -> ProviderContext:
    """The profile's context (for the shared model folder) from the agent's settings."""
    from agent.profiles import Profiles
    from agent.settings import load_settings

    profiles = Profiles(load_settings().home)
    if profiles.exists(spec.profile):
        return profiles.provider_context(spec.profile)
    return ProviderContext(spec.profile, spec.output_dir, (spec.output_dir,))


class _Search:
    """The pieces one run needs: Kokoro, the speaker encoder, the target and the scorer."""

    def __init__(self, engine: KokoroProvider, settings: KokoroSettings, ctx: ProviderContext, scorer: Scorer,
                 stock: dict[str, np.ndarray], spread: np.ndarray) -> None:
        self.engine, self.settings, self.ctx = engine, settings, ctx
        self.scorer, self.stock, self.spread = scorer, stock, spread
        self.directions = list(stock.values())  # the stock voices only, fixed for the whole run
        self.voices_path = ""

    @classmethod
    def build(cls, spec: TrainSpec, params: VoicepackParams, samples: list[Sample], report: Report) -> _Search:
        ctx = provider_context(spec)
        settings = KokoroSettings(langCode=params.lang_code)
        engine = KokoroProvider()
        report(Progress("preparing", 0, params.epochs, message="loading Kokoro and the speaker encoder"))
        embedder = SpeakerEmbedder(params.device)
        chosen = sorted(samples, key=lambda s: -s.seconds)[: params.max_samples]
        audio = [_read(s.path) for s in chosen]
        target = mean_direction([embedder.embed(*a) for a in audio])
        target_features = np.mean([voice_features(*a) for a in audio], axis=0)
        # Short lines (but long enough for a speaker embedding) keep each candidate cheap.
        said = sorted((s.transcript for s in chosen if len(s.transcript.split()) >= 5), key=len)
        texts = said[: params.lines]
        texts += list(DEFAULT_LINES)[: params.lines - len(texts)]
        lines = [engine.phonemize(settings, ctx, text) for text in texts]

        def synthesize(phonemes: str, style: np.ndarray) -> np.ndarray:
            return engine.speak_phonemes(settings, ctx, phonemes, style)

        library = VoiceLibrary()
        stock = {name: library.style(name, params.voices_path, ctx)[0] for name in library.names(params.voices_path, ctx)}
        scorer = Scorer(synthesize, embedder, target, lines, target_features=target_features)
        search = cls(engine, settings, ctx, scorer, stock, style_spread(list(stock.values())))
        search.voices_path = params.voices_path
        return search

    def score(self, style: np.ndarray) -> Score:
        return self.scorer(style)

    def propose(self, best: np.ndarray, step: float, rng: np.random.Generator) -> np.ndarray:
        return propose(best, self.spread, self.directions, step, rng)

    def starting_voice(self, base_voice: str) -> tuple[np.ndarray, str]:
        """The named base voice, or the best-scoring stock voice or blend of the two best."""
        if base_voice != "auto":
            style = VoiceLibrary().style(base_voice, self.voices_path, self.ctx)[0]
        else:
            scored = {name: self.score(style) for name, style in self.stock.items()}
            ranked = sorted(scored, key=lambda n: -scored[n].target)
            for name, style in blends(self.stock, ranked).items():
                scored[name] = self.score(style)
                self.stock.setdefault(name, style)
            base_voice = max(scored, key=lambda n: scored[n].target)
            style = self.stock[base_voice]
            log.info("starting from %s: %s", base_voice, {n: round(s.target, 3) for n, s in scored.items()})
        # Guard intelligibility against the start: a candidate may not change durations wildly.
        self.scorer.reference_seconds = self.scorer.durations(style)
        return style, base_voice


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(rate)

