"""Cut utterances out of a stream with webrtcvad, as they end.

Hangover keeps a little audio before and after speech so word onsets and endings survive;
an utterance that grows past ``max_seconds`` is cut at its longest pause.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from agent.record.decode import ANALYSIS_RATE
from providers.common.audio import to_pcm16


@dataclass(frozen=True)
class VadOptions:
    frame_ms: int = 30  # webrtcvad takes 10, 20 or 30 ms frames
    aggressiveness: int = 2  # 0 (keeps most) .. 3 (keeps least)
    hangover_ms: int = 300  # silence that ends an utterance, and padding kept around speech
    start_frames: int = 3  # voiced frames in a row that start an utterance
    min_seconds: float = 1.0
    max_seconds: float = 15.0


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray  # float32, 16 kHz
    voiced: np.ndarray  # bool per frame
    start: float  # seconds from the start of the stream
    frame_len: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / ANALYSIS_RATE

    @property
    def speech_ratio(self) -> float:
        return float(self.voiced.mean()) if self.voiced.size else 0.0


class Segmenter:
    """Feed 16 kHz float audio in any block size; get finished utterances back."""

    def __init__(self, options: VadOptions) -> None:
        import webrtcvad

        if options.frame_ms not in (10, 20, 30):
            raise ValueError("frame_ms must be 10, 20 or 30")
        self.options = options
        self._vad = webrtcvad.Vad(options.aggressiveness)
        self._frame_len = ANALYSIS_RATE * options.frame_ms // 1000
        self._hang = max(1, options.hangover_ms // options.frame_ms)
        self._pending = np.zeros(0, dtype=np.float32)
        self._preroll: deque[tuple[np.ndarray, bool]] = deque(maxlen=self._hang)
        self._frames: list[tuple[np.ndarray, bool]] = []
        self._run = 0  # voiced frames in a row (before triggering) / unvoiced in a row (after)
        self._frame_index = 0
        self._start_frame = 0
        self.dropped: list[tuple[float, str]] = []  # (seconds, reason) of segments thrown away

    def feed(self, samples: np.ndarray) -> Iterator[Utterance]:
        data = np.concatenate([self._pending, samples.astype(np.float32)])
        n = len(data) // self._frame_len
        for i in range(n):
            frame = data[i * self._frame_len : (i + 1) * self._frame_len]
            yield from self._frame(frame)
        self._pending = data[n * self._frame_len :]

    def flush(self) -> Iterator[Utterance]:
        """End of stream: whatever speech is open becomes an utterance."""
        if self._frames:
            yield from self._emit(self._frames)
        self._frames = []
        self._pending = np.zeros(0, dtype=np.float32)

    def _frame(self, frame: np.ndarray) -> Iterator[Utterance]:
        voiced = self._vad.is_speech(to_pcm16(frame), ANALYSIS_RATE)
        self._frame_index += 1
        if not self._frames:
            self._preroll.append((frame, voiced))
            self._run = self._run + 1 if voiced else 0
            if self._run >= self.options.start_frames:
                self._frames = list(self._preroll)
                self._start_frame = self._frame_index - len(self._frames)
                self._preroll.clear()
                self._run = 0
            return
        self._frames.append((frame, voiced))
        self._run = 0 if voiced else self._run + 1
        if self._run >= self._hang:
            yield from self._emit(self._frames)
            self._frames = []
            self._run = 0
        elif len(self._frames) * self._frame_len >= self.options.max_seconds * ANALYSIS_RATE:
            cut = longest_pause_middle(self._frames)
            head, tail = self._frames[:cut], self._frames[cut:]
            yield from self._emit(head)
            self._start_frame += len(head)
            self._frames = tail

    def _emit(self, frames: list[tuple[np.ndarray, bool]]) -> Iterator[Utterance]:
        # trim trailing silence beyond the hangover padding
        flags = [v for _, v in frames]
        last_voiced = max((i for i, v in enumerate(flags) if v), default=-1)
        frames = frames[: min(len(frames), last_voiced + 1 + self._hang)]
        utterance = Utterance(
            samples=np.concatenate([f for f, _ in frames]) if frames else np.zeros(0, np.float32),
            voiced=np.array([v for _, v in frames], dtype=bool),
            start=self._start_frame * self._frame_len / ANALYSIS_RATE,
            frame_len=self._frame_len,
        )
        if utterance.seconds < self.options.min_seconds:
            self.dropped.append((utterance.seconds, f"shorter than {self.options.min_seconds:g} s"))
            return
        yield utterance


def longest_pause_middle(frames: list[tuple[np.ndarray, bool]]) -> int:
    """Index in the middle of the longest unvoiced run (not at the edges), else the middle."""
    best_len, best_mid, run_start = 0, len(frames) // 2, None
    for i, (_, voiced) in enumerate(frames + [(np.zeros(0), True)]):
        if not voiced and run_start is None:
            run_start = i
        elif voiced and run_start is not None:
            if run_start > 0 and i - run_start > best_len and i < len(frames):
                best_len, best_mid = i - run_start, (run_start + i) // 2
            run_start = None
    return max(1, best_mid)


def segment(samples: np.ndarray, options: VadOptions) -> tuple[list[Utterance], Segmenter]:
    """All utterances in a finished recording."""
    segmenter = Segmenter(options)
    found = list(segmenter.feed(samples))
    found.extend(segmenter.flush())
    return found, segmenter
