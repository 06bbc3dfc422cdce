"""A split Piper voice (``split.py``) speaking: the first run of each text decoded in two chunks,
the first small, so that its audio leaves while the rest of the sentence is decoded.

The first chunk is ``FIRST_FRAMES`` frames (about 0.23 s of audio), more for a long run
(``head_frames``: the rest must be decoded before the first chunk has played); the rest of the
run is one chunk, so a run costs the vocoder ``2 * pad`` frames more than whole (the padding of
the one cut) and every later run is decoded whole: they are made while the first plays.

Loudness. Piper scales each run to full range by its own peak (``normalize_audio``; the voice's
raw peaks vary from 0.25 to 0.83), which a chunk that must leave before the rest is decoded
cannot know. The first chunk is scaled by ``1 / max(its own peak, the median peak of the voice's
last runs)``, and the rest by the same gain unless its own peak would then clip (then by
``1 / that peak``: a step down, 0.6-2.7 dB on 9 of 79 prompts of ``agent/record/data``). A voice
with no runs behind it yet speaks its first run whole.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from providers.common.onnx_arena import shrink
from providers.piper.split import SplitFiles, span

# ~0.23 s at 22050 Hz (256 samples a frame). 40 (Piper's own streaming chunks are 45) left a short
# first sentence ("Good morning!", 60 frames) whole: 20 brought its first audio from 40 to 29 ms on
# 2 idle cores (bench/RESULTS.md "Every door on a quiet machine, again")
FIRST_FRAMES = 20
# A frame's vocoder takes about 0.34 ms on 2 idle cores and plays 11.6 ms: a head of 1/12 of the run
# covers the rest's decode with 3x to spare (a loaded machine)
HEAD_SHARE = 12
PEAKS_KEPT = 9
SILENT = 1e-8  # a peak below this is silence (as Piper's normalization takes it)


class SplitVoice:
    """The sessions of a voice's two parts: phonemes -> z, and z -> audio by spans."""

    def __init__(self, files: SplitFiles, encoder: Any, decoder: Any) -> None:
        self.files = files
        self.encoder = encoder
        self.decoder = decoder

    def latent(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """z for one run (the encoder part: all of the model's randomness)."""
        return np.asarray(self.encoder.run([self.files.latent], feed)[0])

    def decode(self, z: np.ndarray, feed: dict[str, np.ndarray], start: int = 0, stop: int | None = None) -> np.ndarray:
        """The audio of frames ``start`` to ``stop`` of ``z`` (the same samples as of the whole)."""
        speaker = {name: feed[name] for name in self.files.speaker_inputs}

        def run(part: np.ndarray) -> np.ndarray:
            return np.asarray(self.decoder.run(None, {self.files.latent: part, **speaker})[0]).reshape(-1)

        return span(run, z, start, z.shape[2] if stop is None else stop, self.files.pad, self.files.hop)

    def release_arena(self, feed: dict[str, np.ndarray]) -> None:
        """The vocoder's arena handed back (the encoder's goes with ``runs.release_arena``)."""
        z = np.zeros((1, self.files.channels, 1), np.float32)
        shrink(self.decoder, {self.files.latent: z, **{name: feed[name] for name in self.files.speaker_inputs}})


class Peaks:
    """The raw peaks of a voice's last runs, per speaker: what a first chunk's gain is set by."""

    def __init__(self) -> None:
        self._peaks: dict[int | None, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, speaker: int | None, peak: float) -> None:
        if peak >= SILENT:
            with self._lock:
                self._peaks.setdefault(speaker, deque(maxlen=PEAKS_KEPT)).append(peak)

    def typical(self, speaker: int | None) -> float | None:
        with self._lock:
            known = list(self._peaks.get(speaker, ()))
        return statistics.median(known) if known else None


def head_frames(frames: int) -> int:
    """How many of a first run's ``frames`` the first chunk holds."""
    return max(FIRST_FRAMES, frames // HEAD_SHARE)


def run_audio(voice: SplitVoice, feed: dict[str, np.ndarray], peaks: Peaks, speaker: int | None,
              lock: AbstractContextManager[Any], first: bool) -> Iterator[tuple[np.ndarray, bool]]:
    """One run's audio scaled to full range, in two chunks when it is a text's ``first`` run long
    enough to gain from it and the voice has spoken before, else whole; each with whether more of
    the run follows. ``lock`` is held for each model run and never across a yield."""
    with lock:
        z = voice.latent(feed)
    frames = z.shape[2]
    typical = peaks.typical(speaker)
    head_end = head_frames(frames)
    if not first or typical is None or frames <= head_end + 2 * voice.files.pad:
        with lock:
            audio = voice.decode(z, feed)
        peak = _peak(audio)
        peaks.add(speaker, peak)
        yield _scaled(audio, 1.0 / peak if peak >= SILENT else 0.0), False
        return
    with lock:
        head = voice.decode(z, feed, 0, head_end)
    head_peak = _peak(head)
    gain = 1.0 / max(head_peak, typical)
    yield _scaled(head, gain), True
    with lock:
        tail = voice.decode(z, feed, head_end)
    tail_peak = _peak(tail)
    peaks.add(speaker, max(head_peak, tail_peak))
    yield _scaled(tail, min(gain, 1.0 / tail_peak) if tail_peak >= SILENT else gain), False


def _peak(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def _scaled(audio: np.ndarray, gain: float) -> np.ndarray:
    return audio * np.float32(gain)
