"""The voicepack search: a random walk in Kokoro's style space, scored by who it sounds like.

Kokoro has no speaker encoder to invert, but its style table is only 256 numbers per row, so a
voice can be found by search (the public KVoiceWalk approach): start from the stock voice or
blend that already sounds most like the target, add noise shaped like the spread of the stock
voices, keep a candidate only if its speech scores better. The score is the Resemblyzer
similarity of the candidate's speech to the target's samples, plus how alike the candidate
sounds across different texts (a voice that only matches on one sentence is not that voice);
candidates whose speech collapses (silence, runaway durations) are refused outright. A third
term compares plain acoustic features (median pitch and the average spectral envelope) with the
target's: speaker similarity alone is a rugged landscape over a few sentences, and a walk on it
mostly fits noise, while pitch and envelope change smoothly with the style and point the walk
towards the target's register and timbre.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SYNTH_RATE = 24000
FEATURE_RATE = 16000
WEIGHTS = {"target": 0.6, "features": 0.3, "consistency": 0.1}

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


def voice_features(audio: np.ndarray, rate: int) -> np.ndarray:
    """[log2 of the median pitch, 40-band log-mel envelope (dB, mean removed)] of the voiced part."""
    import librosa
    import soxr

    wav = soxr.resample(np.asarray(audio, np.float32), rate, FEATURE_RATE) if rate != FEATURE_RATE else np.asarray(audio, np.float32)
    if len(wav) < FEATURE_RATE // 4:
        wav = np.pad(wav, (0, FEATURE_RATE // 4 - len(wav)))
    mel = librosa.feature.melspectrogram(y=wav, sr=FEATURE_RATE, n_fft=512, hop_length=160, n_mels=40, fmax=7600)
    db = 10 * np.log10(mel + 1e-10)
    energy = db.max(axis=0)
    loud = energy > energy.max() - 35  # frames with speech in them
    envelope = db[:, loud].mean(axis=1)
    f0 = librosa.yin(wav, fmin=60, fmax=500, sr=FEATURE_RATE, frame_length=1024, hop_length=160)
    frames = min(len(f0), len(loud))
    pitch = float(np.median(f0[:frames][loud[:frames]])) if loud[:frames].any() else 150.0
    return np.concatenate([[np.log2(pitch)], envelope - envelope.mean()]).astype(np.float32)


def feature_similarity(candidate: np.ndarray, target: np.ndarray) -> float:
    """1 for the same pitch and envelope; a quarter octave or 4 dB RMS apart costs about e^-1 each."""
    pitch = float(np.exp(-abs(candidate[0] - target[0]) / 0.25))
    envelope = float(np.exp(-np.sqrt(np.mean((candidate[1:] - target[1:]) ** 2)) / 4.0))
    return 0.5 * pitch + 0.5 * envelope


def mean_direction(vectors: Sequence[np.ndarray]) -> np.ndarray:
    mean = np.mean(np.stack(vectors), axis=0)
    return mean / (np.linalg.norm(mean) + 1e-9)


@dataclass(frozen=True)
class Score:
    total: float
    target: float  # mean cosine to the target voice
    consistency: float  # mean pairwise cosine between the candidate's own utterances
    ok: bool = True  # False: the speech collapsed; never accepted
    features: float = 0.0  # pitch and envelope likeness to the target


class Scorer:
    """Scores a style by synthesizing fixed phoneme lines and embedding the result."""

    def __init__(
        self,
        synthesize: Synthesize,
        embedder: SpeakerEmbedder,
        target: np.ndarray,
        lines: Sequence[str],
        reference_seconds: Sequence[float] | None = None,
        target_features: np.ndarray | None = None,
    ) -> None:
        self._synthesize = synthesize
        self._embedder = embedder
        self._target = target
        self._target_features = target_features
        self._lines = list(lines)
        self.reference_seconds = list(reference_seconds) if reference_seconds else None

    def durations(self, style: np.ndarray) -> list[float]:
        return [len(self._synthesize(line, style)) / SYNTH_RATE for line in self._lines]

    def __call__(self, style: np.ndarray) -> Score:
        vectors, features, ok = [], [], True
        for index, line in enumerate(self._lines):
            audio = self._synthesize(line, style)
            seconds = len(audio) / SYNTH_RATE
            if self.reference_seconds and not 0.5 <= seconds / self.reference_seconds[index] <= 2.0:
                ok = False  # mumbling or runaway: the guard for intelligibility
            if not len(audio) or float(np.sqrt(np.mean(audio**2))) < 0.005:
                ok = False
            vectors.append(self._embedder.embed(audio, SYNTH_RATE))
            if self._target_features is not None:
                features.append(voice_features(audio, SYNTH_RATE))
        target = float(np.mean([v @ self._target for v in vectors]))
        pairs = [float(a @ b) for i, a in enumerate(vectors) for b in vectors[i + 1 :]]
        consistency = float(np.mean(pairs)) if pairs else 1.0
        if self._target_features is None:
            total = (WEIGHTS["target"] + WEIGHTS["features"]) * target + WEIGHTS["consistency"] * consistency
            return Score(total if ok else -1.0, target, consistency, ok)
        likeness = feature_similarity(np.mean(features, axis=0), self._target_features)
        total = WEIGHTS["target"] * target + WEIGHTS["features"] * likeness + WEIGHTS["consistency"] * consistency
        return Score(total if ok else -1.0, target, consistency, ok, likeness)


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
    others = [voice for voice in stock if not np.array_equal(voice, best)]
    if others and rng.random() < 0.5:
        other = others[int(rng.integers(len(others)))]
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
