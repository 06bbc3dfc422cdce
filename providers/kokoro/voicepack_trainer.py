"""Train a Kokoro voicepack from the owner's samples (the seed's "Train Kokoro Voicepack").

Implements ``providers.training.Trainer``: the job runner calls ``run`` in a subprocess. Gradient
steps (``providers.kokoro.style_descent``) move the style towards the owner's voice; every few
steps the real engine speaks with it and the score (``providers.kokoro.similarity``) decides
whether it becomes the best voicepack so far. This module reads the dataset, checks it is
enough, checkpoints (the best voicepack and the descent's state, atomically) and resumes.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from providers.base import ProviderContext
from providers.common.audio import read_audio_file
from providers.common.process import map_large_allocations
from providers.kokoro.config import KokoroSettings
from providers.kokoro.dataset import Sample, check_dataset, read_dataset
from providers.kokoro.engine import KokoroProvider
from providers.kokoro.phonemes import split_sentences
from providers.kokoro.similarity import (
    Score,
    Scorer,
    SpeakerEmbedder,
    blends,
    mean_direction,
    median_pitch,
    style_spread,
)
from providers.kokoro.train_params import VoicepackParams, recompute_steps
from providers.kokoro.voices import VoiceLibrary, VoicepackError, load_voicepack, save_voicepack
from providers.training import Progress, Report, ShouldStop, TrainResult, TrainSpec

if TYPE_CHECKING:
    from providers.kokoro.style_descent import DescentState, StyleDescent

log = logging.getLogger(__name__)

DEFAULT_LINES = (
    "The weather today is mild, with a light breeze from the west.",
    "Could you remind me to call the plumber tomorrow morning?",
    "The library closes early on public holidays this year.",
)
CHECKPOINT_EVERY_S = 30.0
# A step's memory grows with its audio (bench/voicepack_step_memory.py: 1.0 GB over the model for 4.4 s
# recomputed in pieces, 2.6 GB kept whole): longer sentences are said in pieces (Kokoro's tokens are
# its phoneme characters).
WIDE_LINES = 8  # the owner's sentences a new best voice's pitch is heard on before it is kept
MAX_STEP_TOKENS = 64
MIN_STEP_TOKENS = 25  # about a second: shorter pieces say little about a voice


class KokoroVoicepackTrainer:
    """Finds the (510, 1, 256) style that makes Kokoro sound most like the dataset's speaker."""

    name = "kokoro"
    params_model = VoicepackParams

    def run(self, spec: TrainSpec, report: Report, should_stop: ShouldStop) -> TrainResult:
        params = VoicepackParams.model_validate(spec.params)
        low = recompute_steps(params, spec.memory_mb)
        log.info("memory %s, %s MB free: steps %s", params.memory, spec.memory_mb, "recomputed in pieces" if low else "kept whole")
        if low:
            map_large_allocations()  # the job's process: the steps' activations go back when freed (issue 24)
        report(Progress("preparing", 0, params.epochs, message="reading the dataset"))
        samples = read_dataset(spec.dataset_dir)
        check_dataset(samples, params, spec.dataset_dir)
        search = _Search.build(spec, params, samples, report)
        spec.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        saved = _load_checkpoint(spec.checkpoint_dir)
        if saved is not None:
            state, best, descent_state = saved
            start = dict(state["start"])  # type: ignore[call-overload]
            base, _ = search.starting_voice(str(start["voice"]))  # the duration guard is relative to the start
            step = int(state["step"])  # type: ignore[call-overload]
            best_score = search.kept_score(best)
            descent = search.descent(base, params, low)
            descent.restore(descent_state)
            log.info("resuming at step %d (score %.4f)", step, best_score.total)
        else:
            best, start_name = search.starting_voice(params.base_voice)
            best_score, step = search.kept_score(best), 0
            start = {"voice": start_name, "target": best_score.target, "score": best_score.total}
            descent = search.descent(best, params, low)
            _checkpoint(spec, best, step, best_score, start, descent.state())
        last_save = time.monotonic()
        while step < params.epochs:
            if should_stop():
                _checkpoint(spec, best, step, best_score, start, descent.state())
                return TrainResult("stopped", metrics=_metrics(best_score, start, step))
            rng = np.random.default_rng([spec.seed, step])  # per step: a resumed run says the same sentences
            tokens = search.training_tokens[int(rng.integers(len(search.training_tokens)))]
            similarity = descent.step(tokens, seed=int(rng.integers(2**31)))
            step += 1
            checked = step % params.check_every == 0 or step == params.epochs
            if checked:
                candidate = descent.style()
                score = search.score(candidate)
                if score.ok and score.total > best_score.total:
                    score = search.scorer.widened(candidate, score)  # heard on more sentences before it is kept
                    if score.total > best_score.total:
                        best, best_score = candidate, score
                if score.ok:
                    descent.aim_pitch(score.octaves)
            report(Progress("training", step, params.epochs, best=best_score.total,
                            message=f"similarity {best_score.target:.3f} (start {start['target']:.3f}), this step {similarity:.3f}"
                                    + (f", checked: pitch {100 * (2 ** score.octaves - 1):+.1f} %" if checked else "")))
            if checked or time.monotonic() - last_save >= CHECKPOINT_EVERY_S:
                _checkpoint(spec, best, step, best_score, start, descent.state())
                last_save = time.monotonic()
        report(Progress("exporting", step, params.epochs, best=best_score.total))
        # .npy first: it is what the profile is pointed at, and reading it needs no torch.
        outputs = [spec.output_dir / f"{spec.speaker}.npy", spec.output_dir / f"{spec.speaker}.pt"]
        for path in outputs:
            save_voicepack(best, path)
        return TrainResult("finished", outputs=outputs, metrics=_metrics(best_score, start, step))


def _metrics(score: Score, start: dict[str, object], step: int) -> dict[str, float]:
    return {"similarity": score.target, "consistency": score.consistency, "score": score.total,
            "start_similarity": float(start["target"]), "steps": float(step)}  # type: ignore[arg-type]


def _checkpoint(spec: TrainSpec, best: np.ndarray, step: int, score: Score, start: dict[str, object], descent: DescentState) -> None:
    import io

    from providers.common.files import atomic_write_bytes, atomic_write_text

    # The files the state names come first, so the state never points ahead of them.
    save_voicepack(best, spec.checkpoint_dir / "best.npy")
    buffer = io.BytesIO()
    np.savez(buffer, offset=descent.offset, adam_mean=descent.adam_mean, adam_square=descent.adam_square,
             adam_steps=np.array(descent.adam_steps), pitch_aim=np.array(descent.pitch_aim))
    atomic_write_bytes(spec.checkpoint_dir / f"descent-{step}.npz", buffer.getvalue())
    state = {"step": step, "score": score.total, "similarity": score.target, "start": start, "descent": f"descent-{step}.npz"}
    atomic_write_text(spec.checkpoint_dir / "state.json", json.dumps(state, indent=2) + "\n")
    for old in spec.checkpoint_dir.glob("descent-*.npz"):
        if old.name != state["descent"]:
            old.unlink(missing_ok=True)


def _load_checkpoint(directory: Path) -> tuple[dict[str, object], np.ndarray, DescentState] | None:
    """The saved state, best voicepack and descent, or None when there is no usable checkpoint."""
    from providers.kokoro.style_descent import DescentState

    if not (directory / "state.json").exists():
        return None
    try:
        state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        if not (isinstance(state, dict) and {"step", "start", "descent"} <= state.keys()):
            raise ValueError("state.json is not this trainer's")
        int(state["step"]), str(state["start"]["voice"])
        with np.load(directory / Path(str(state["descent"])).name, allow_pickle=False) as saved:
            aim = float(saved["pitch_aim"]) if "pitch_aim" in saved.files else 0.0  # checkpoints before the aim
            descent = DescentState(saved["offset"], saved["adam_mean"], saved["adam_square"], int(saved["adam_steps"]), aim)
        if not descent.offset.shape == descent.adam_mean.shape == descent.adam_square.shape == (256,):
            raise ValueError(f"descent state of shape {descent.offset.shape}")
        best = load_voicepack(directory / "best.npy")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, VoicepackError) as exc:
        log.warning("starting afresh: the checkpoint in %s cannot be used (%s)", directory, exc)
        return None
    return state, best, descent


class _Search:
    """The pieces one run needs: Kokoro, the speaker encoder, the target and the scorer."""

    def __init__(self, engine: KokoroProvider, settings: KokoroSettings, ctx: ProviderContext, scorer: Scorer,
                 stock: dict[str, np.ndarray], voices_path: str, training_tokens: list[list[int]]) -> None:
        self.engine, self.settings, self.ctx = engine, settings, ctx
        self.scorer, self.stock, self.spread = scorer, stock, style_spread(list(stock.values()))
        self.voices_path, self.training_tokens = voices_path, training_tokens

    @classmethod
    def build(cls, spec: TrainSpec, params: VoicepackParams, samples: list[Sample], report: Report) -> _Search:
        ctx = spec.ctx
        settings = KokoroSettings(langCode=params.lang_code)
        engine = KokoroProvider()
        report(Progress("preparing", 0, params.epochs, message="loading Kokoro and the speaker encoder"))
        embedder = SpeakerEmbedder(params.device)
        chosen = sorted(samples, key=lambda s: -s.seconds)[: params.max_samples]
        audio = [read_audio_file(s.path) for s in chosen]
        target = mean_direction([embedder.embed(*a) for a in audio])
        pitch = float(np.median([median_pitch(*a) for a in audio]))
        # Checks say a few short lines (but long enough for a speaker embedding); each gradient
        # step says one of the owner's sentences drawn at random, so no single sentence is learned.
        said = sorted({sentence for s in chosen for sentence in split_sentences(s.transcript) if len(sentence.split()) >= 5},
                      key=lambda t: (len(t), t))
        texts = said[: params.lines]
        texts += list(DEFAULT_LINES)[: params.lines - len(texts)]
        lines = [engine.phonemize(settings, ctx, text) for text in texts]
        from kokoro_onnx import (
            split_phonemes,  # kokoro-onnx's own cutter: punctuation first, then words
        )

        pieces = [piece for text in said for piece in split_phonemes(engine.phonemize(settings, ctx, text), MAX_STEP_TOKENS)]
        training = [tokens for tokens in (engine.tokens(settings, ctx, piece) for piece in pieces) if len(tokens) >= MIN_STEP_TOKENS]
        training = training or [engine.tokens(settings, ctx, piece) for line in lines for piece in split_phonemes(line, MAX_STEP_TOKENS)]

        def synthesize(phonemes: str, style: np.ndarray) -> np.ndarray:
            return engine.speak_phonemes(settings, ctx, phonemes, style)

        library = VoiceLibrary()
        stock = {name: library.style(name, params.voices_path, ctx)[0] for name in library.names(params.voices_path, ctx)}
        wide = said[:: max(1, len(said) // WIDE_LINES)][:WIDE_LINES]  # short to long, as many as there are up to 8
        scorer = Scorer(synthesize, embedder, target, lines, target_pitch=pitch,
                        wide_lines=[engine.phonemize(settings, ctx, text) for text in wide])
        return cls(engine, settings, ctx, scorer, stock, params.voices_path, training)

    def score(self, style: np.ndarray) -> Score:
        return self.scorer(style)

    def kept_score(self, style: np.ndarray) -> Score:
        """The score of a voice about to be kept: its pitch heard on the wide lines."""
        return self.scorer.widened(style, self.scorer(style))

    def descent(self, base: np.ndarray, params: VoicepackParams, low_memory: bool) -> StyleDescent:
        from providers.kokoro.style_descent import (
            RECOMPUTE_SEGMENTS,
            StyleDescent,  # torch: only in the training process
        )

        model = self.engine.float_model(self.settings, self.ctx)
        return StyleDescent(model, base, self.spread, self.scorer.target, self.scorer.embedder, params.learning_rate,
                            self.scorer.target_pitch, segments=RECOMPUTE_SEGMENTS if low_memory else 0)

    def starting_voice(self, base_voice: str) -> tuple[np.ndarray, str]:
        """The named base voice, or the best-scoring stock voice or blend of the two best."""
        if base_voice != "auto":
            style = VoiceLibrary().style(base_voice, self.voices_path, self.ctx)[0]
        else:
            scored = {name: self.score(style) for name, style in self.stock.items()}
            ranked = sorted(scored, key=lambda n: -scored[n].total)
            for name, style in blends(self.stock, ranked).items():
                scored[name] = self.score(style)
                self.stock.setdefault(name, style)
            base_voice = max(scored, key=lambda n: scored[n].total)
            style = self.stock[base_voice]
            log.info("starting from %s: %s", base_voice, {n: (round(s.target, 3), round(s.octaves, 2)) for n, s in scored.items()})
        # Guard intelligibility against the start: a candidate may not change durations wildly.
        self.scorer.reference_seconds = self.scorer.durations(style)
        return style, base_voice


