"""How much a Kokoro style sounds like the owner: the score every voicepack candidate gets.

The score is the Resemblyzer similarity of the style's speech to the owner's samples, plus how
alike the style sounds across different texts (a voice that only matches on one sentence is not
that voice), minus how far its pitch is from the owner's: a speaker encoder can be pleased by a
voice an octave off (measured: a female start trained towards a male voice gained 0.12
similarity at the same pitch), and nobody hears that voice as the owner's. It is measured on
the real engine (ONNX Runtime), the one that will speak with the voicepack. Candidates whose speech collapses (silence, durations far from the starting voice's)
are refused outright: the guard for intelligibility.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from providers.common.librosa_loader import load_librosa

SYNTH_RATE = 24000
PITCH_RATE = 16000
WEIGHTS = {"target": 0.9, "consistency": 0.1}
PITCH_PENALTY = 0.25  # per octave between the style's median pitch and the owner's
# Beyond this the penalty is steep: a gain in similarity no longer pays for it. bench/kokoro_voicepack.py: one
# Piper-owner run kept a voicepack 13.7 % above the owner's pitch by Praat (the gentle penalty alone), another
# 4 %; 5 % here (YIN on the check lines) leaves room for the trackers to differ within the 10 % a listener allows.
PITCH_TOLERANCE = 0.07  # octaves, about 5 %
PITCH_PENALTY_BEYOND = 2.0  # per octave past the tolerance, on top of PITCH_PENALTY

Synthesize = Callable[[str, np.ndarray], np.ndarray]  # (phonemes, style) -> float audio at 24 kHz


class SpeakerEmbedder:
    """Resemblyzer d-vectors of speech at any sample rate (silence trimmed, level normalised)."""

    def __init__(self, device: str = "cpu") -> None:
        import torch
        from resemblyzer import VoiceEncoder

        load_librosa()  # Resemblyzer's mel spectrograms are librosa's
        if device == "cuda" and not torch.cuda.is_available():
            device = "cpu"
        self._encoder = VoiceEncoder(device, verbose=False)

    @property
    def encoder(self) -> Any:
        """The Resemblyzer network itself (for the differentiable embedding)."""
        return self._encoder

    def embed(self, audio: np.ndarray, rate: int) -> np.ndarray:
        from resemblyzer import preprocess_wav

        wav = preprocess_wav(np.asarray(audio, np.float32), source_sr=rate)
        if len(wav) < 8000:  # under half a second of speech left after trimming
            wav = np.pad(wav, (0, 8000 - len(wav)))
        vector = np.asarray(self._encoder.embed_utterance(wav), np.float32)
        return vector / (np.linalg.norm(vector) + 1e-9)


def median_pitch(audio: np.ndarray, rate: int) -> float:
    """Median pitch (Hz) of the loud frames; 0 when there are none."""
    import soxr

    librosa = load_librosa()
    wav = np.asarray(audio, np.float32) if rate == PITCH_RATE else soxr.resample(np.asarray(audio, np.float32), rate, PITCH_RATE)
    if len(wav) < 2048:
        return 0.0
    f0 = librosa.yin(wav, fmin=50, fmax=500, sr=PITCH_RATE, frame_length=1024, hop_length=160, center=True)
    energy = librosa.feature.rms(y=wav, frame_length=1024, hop_length=160, center=True)[0]
    loud = energy > energy.max() * 10 ** (-25 / 20)
    frames = min(len(f0), len(loud))
    return float(np.median(f0[:frames][loud[:frames]])) if loud[:frames].any() else 0.0


def pitch_penalty(octaves: float) -> float:
    """What a candidate's distance from the owner's pitch costs its score: gentle within the
    tolerance, steep beyond it."""
    off = abs(octaves)
    return PITCH_PENALTY * off + PITCH_PENALTY_BEYOND * max(0.0, off - PITCH_TOLERANCE)


def octaves_apart(pitch: float, reference: float) -> float:
    return float(np.log2(pitch / reference)) if pitch > 0 and reference > 0 else 0.0


def mean_direction(vectors: Sequence[np.ndarray]) -> np.ndarray:
    mean = np.mean(np.stack(vectors), axis=0)
    return mean / (np.linalg.norm(mean) + 1e-9)


@dataclass(frozen=True)
class Score:
    total: float
    target: float  # mean cosine to the target voice
    consistency: float  # mean pairwise cosine between the candidate's own utterances
    ok: bool = True  # False: the speech collapsed; never accepted
    octaves: float = 0.0  # median pitch against the target's, signed


class Scorer:
    """Scores a style by synthesizing fixed phoneme lines and embedding the result."""

    def __init__(
        self,
        synthesize: Synthesize,
        embedder: SpeakerEmbedder,
        target: np.ndarray,
        lines: Sequence[str],
        reference_seconds: Sequence[float] | None = None,
        target_pitch: float = 0.0,
        wide_lines: Sequence[str] = (),
    ) -> None:
        self._synthesize = synthesize
        self.embedder = embedder
        self.target = target
        self.target_pitch = target_pitch  # Hz; 0: pitch is not scored
        self._lines = list(lines)
        self._wide_lines = list(wide_lines)
        self.reference_seconds = list(reference_seconds) if reference_seconds else None

    def durations(self, style: np.ndarray) -> list[float]:
        return [len(self._synthesize(line, style)) / SYNTH_RATE for line in self._lines]

    def __call__(self, style: np.ndarray) -> Score:
        vectors, pitches, ok = [], [], True
        for index, line in enumerate(self._lines):
            audio = self._synthesize(line, style)
            seconds = len(audio) / SYNTH_RATE
            if self.reference_seconds and not 0.5 <= seconds / self.reference_seconds[index] <= 2.0:
                ok = False  # mumbling or runaway: the guard for intelligibility
            if not len(audio) or float(np.sqrt(np.mean(audio**2))) < 0.005:
                ok = False
            vectors.append(self.embedder.embed(audio, SYNTH_RATE))
            if self.target_pitch:
                pitches.append(median_pitch(audio, SYNTH_RATE))
        target = float(np.mean([v @ self.target for v in vectors]))
        pairs = [float(a @ b) for i, a in enumerate(vectors) for b in vectors[i + 1 :]]
        consistency = float(np.mean(pairs)) if pairs else 1.0
        octaves = octaves_apart(float(np.median(pitches)), self.target_pitch) if pitches else 0.0
        total = WEIGHTS["target"] * target + WEIGHTS["consistency"] * consistency - pitch_penalty(octaves)
        return Score(total if ok else -1.0, target, consistency, ok, octaves)

    def widened(self, style: np.ndarray, score: Score) -> Score:
        """``score`` with its pitch heard on the wide lines (more of the owner's sentences, against
        the owner's pitch over them all). The few check lines read a voice's pitch a few per cent
        off from one check to the next; a voice is kept only on the wider reading
        (bench/RESULTS.md "Two English owners": the held-out pitch followed it, 2-8 points higher)."""
        if not (score.ok and self.target_pitch and self._wide_lines):
            return score
        pitches = [median_pitch(self._synthesize(line, style), SYNTH_RATE) for line in self._wide_lines]
        octaves = octaves_apart(float(np.median(pitches)), self.target_pitch)
        return replace(score, total=score.total + pitch_penalty(score.octaves) - pitch_penalty(octaves), octaves=octaves)


def style_spread(stock: Sequence[np.ndarray]) -> np.ndarray:
    """Per-value standard deviation over the stock voices: the unit of the descent's offset."""
    spread = np.std(np.stack(stock), axis=0)
    return np.maximum(spread, 1e-3).astype(np.float32)


def blends(stock: dict[str, np.ndarray], ranked: Sequence[str]) -> dict[str, np.ndarray]:
    """Mixes of the two best stock voices to try as starting points."""
    if len(ranked) < 2:
        return {}
    a, b = ranked[0], ranked[1]
    return {f"{a}:{w:g},{b}:{1 - w:g}": stock[a] * w + stock[b] * (1 - w) for w in (0.75, 0.5)}
