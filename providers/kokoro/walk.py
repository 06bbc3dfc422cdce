"""The voicepack search: a random walk in Kokoro's style space, scored by who it sounds like.

Kokoro has no speaker encoder to invert, but its style table is only 256 numbers per row, so a
voice can be found by search (the public KVoiceWalk approach): start from the stock voice or
blend that already sounds most like the target, add noise shaped like the spread of the stock
voices, keep a candidate only if its speech scores better. The score is the Resemblyzer
similarity of the candidate's speech to the target's samples, plus how alike the candidate
sounds across different texts (a voice that only matches on one sentence is not that voice);
candidates whose speech collapses (silence, runaway durations) are refused outright.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SYNTH_RATE = 24000
TARGET_WEIGHT = 0.9  # the rest of the score is self-consistency across texts

Synthesize = Callable[[str, np.ndarray], np.ndarray]  # (phonemes, style) -> float audio at 24 kHz


class SpeakerEmbedder:
    """Resemblyzer d-vectors of speech at any sample rate (silence trimmed, level normalised)."""

    def __init__(self, device: str = "cpu") -> None:
        import torch
        from resemblyzer import VoiceEncoder

        if device == "cuda" and not torch.cuda.is_available():
            device = "cpu"
        self._encoder = VoiceEncoder(device, verbose=False)

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        from resemblyzer import preprocess_wav

        wav = preprocess_wav(np.asarray(audio, np.float32), source_sr=rate)
        if len(wav) < 8000:  # under half a second of speech left after trimming
            wav = np.pad(wav, (0, 8000 - len(wav)))
        vector = np.asarray(self._encoder.embed_utterance(wav), np.float32)
        return vector / (np.linalg.norm(vector) + 1e-9)


def mean_direction(vectors: Sequence[np.ndarray]) -> np.ndarray:
    mean = np.mean(np.stack(vectors), axis=0)
    return mean / (np.linalg.norm(mean) + 1e-9)


@dataclass(frozen=True)
class Score:
    total: float
    target: float  # mean cosine to the target voice
    consistency: float  # mean pairwise cosine between the candidate's own utterances
    ok: bool = True  # False: the speech collapsed; never accepted


class Scorer:
    """Scores a style by synthesizing fixed phoneme lines and embedding the result."""

    def __init__(
        self,
        synthesize: Synthesize,
        embedder: SpeakerEmbedder,
        target: np.ndarray,
        lines: Sequence[str],
        reference_seconds: Sequence[float] | None = None,
    ) -> None:
        self._synthesize = synthesize
        self._embedder = embedder
        self._target = target
        self._lines = list(lines)
        self.reference_seconds = list(reference_seconds) if reference_seconds else None

    def durations(self, style: np.ndarray) -> list[float]:
        return [len(self._synthesize(line, style)) / SYNTH_RATE for line in self._lines]

    def __call__(self, style: np.ndarray) -> Score:
        vectors, ok = [], True
        for index, line in enumerate(self._lines):
            audio = self._synthesize(line, style)
            seconds = len(audio) / SYNTH_RATE
            if self.reference_seconds and not 0.5 <= seconds / self.reference_seconds[index] <= 2.0:
                ok = False  # mumbling or runaway: the guard for intelligibility
            if not len(audio) or float(np.sqrt(np.mean(audio**2))) < 0.005:
                ok = False
            vectors.append(self._embedder.embed(audio, SYNTH_RATE))
        target = float(np.mean([v @ self._target for v in vectors]))
        pairs = [float(a @ b) for i, a in enumerate(vectors) for b in vectors[i + 1 :]]
        consistency = float(np.mean(pairs)) if pairs else 1.0
        total = TARGET_WEIGHT * target + (1 - TARGET_WEIGHT) * consistency
        return Score(total if ok else -1.0, target, consistency, ok)


def style_spread(stock: Sequence[np.ndarray]) -> np.ndarray:
    """Per-value standard deviation over the stock voices: how far a step may go in each value."""
    spread = np.std(np.stack(stock), axis=0)
    return np.maximum(spread, 1e-3).astype(np.float32)


def propose(
    best: np.ndarray, spread: np.ndarray, stock: Sequence[np.ndarray], step: float, rng: np.random.Generator
) -> np.ndarray:
    """One candidate. Half the time a move along the difference to a stock voice, towards it or
    away from it (the directions in which real voices differ; the table's rows move as the
    voice's do); otherwise one random 256-value direction applied to every row (rows differ
    only by the phoneme count they serve, so moving them together keeps the voice one voice)."""
    if stock and rng.random() < 0.5:
        other = stock[int(rng.integers(len(stock)))]
        return (best + (other - best) * float(rng.normal(0.0, 2 * step))).astype(np.float32)
    direction = rng.standard_normal((1, 1, best.shape[-1])).astype(np.float32)
    scale = step * float(rng.uniform(0.5, 1.5))
    return (best + direction * spread * scale).astype(np.float32)


def adapt_step(step: float, improved: bool, base: float) -> float:
    """The (1+1)-ES one-fifth rule: longer steps while they keep succeeding, shorter when not."""
    step = step * (1.3 if improved else 0.93)
    return float(min(max(step, base / 4), base * 8))


def blends(stock: dict[str, np.ndarray], ranked: Sequence[str]) -> dict[str, np.ndarray]:
    """Mixes of the two best stock voices to try as starting points."""
    if len(ranked) < 2:
        return {}
    a, b = ranked[0], ranked[1]
    return {f"{a}:{w:g},{b}:{1 - w:g}": stock[a] * w + stock[b] * (1 - w) for w in (0.75, 0.5)}
