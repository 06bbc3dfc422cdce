"""What a hostile neighbour sends (issue 13), built once for the tests and bench/hostile_bench.py,
and a sampler of the peak memory of the agent and its children while it answers."""

from __future__ import annotations

import io
import random
import threading
from types import TracebackType

import numpy as np
import psutil
import soundfile


def silent_flac(rate: int, channels: int, seconds: float) -> bytes:
    """Silence compresses to almost nothing: a small file whose header promises gigabytes."""
    buffer = io.BytesIO()
    frames = int(rate * seconds)
    block = np.zeros((min(frames, rate * 10), channels), np.int16)
    with soundfile.SoundFile(buffer, "w", rate, channels, "PCM_16", format="FLAC") as handle:
        written = 0
        while written < frames:
            part = block[: frames - written]
            handle.write(part)
            written += len(part)
    return buffer.getvalue()


def rate_bomb() -> bytes:
    """FLAC's highest rate (655 350 Hz), a minute of it: 157 MB of float32 decoded."""
    return silent_flac(655350, 1, 60)


def channel_bomb() -> bytes:
    """Eight channels at 192 kHz for 590 s: the issue's 938 KB file that decoded to 5.7 GB."""
    return silent_flac(192000, 8, 590)


def long_word(letters: int = 5000) -> str:
    return "a" * letters


def han(count: int = 5000) -> str:
    """Chinese characters: an English voice reads each as "Chinese letter" (35.6 minutes for 5000)."""
    pick = random.Random(18)
    return "".join(chr(pick.randint(0x4E00, 0x9FA5)) for _ in range(count))


def cyrillic(count: int = 5000) -> str:
    """Cyrillic letters in one run: an English voice spells them (over 20 minutes for 5000)."""
    pick = random.Random(18)
    return "".join(chr(pick.randint(0x430, 0x44F)) for _ in range(count))


def short_words(count: int = 1000) -> str:
    return " ".join(["word"] * count)


def nested(depth: int = 30000) -> str:
    return "[" * depth + "]" * depth


def huge_number(digits: int = 5000) -> str:
    return '{"text": "hi", "speed": ' + "9" * digits + "}"


class PeakRss:
    """Samples the resident memory of a process and all its descendants (or, ``children=False``,
    the process alone) every ``interval`` s; ``peak`` is the largest sum seen (children started
    meanwhile are counted as they appear)."""

    def __init__(self, pid: int, interval: float = 0.02, children: bool = True) -> None:
        self._root = psutil.Process(pid)
        self._interval = interval
        self._children = children
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        total = 0
        for process in [self._root, *(self._root.children(recursive=True) if self._children else [])]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue  # gone between listing and reading
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.now())
            except psutil.Error:
                return
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
