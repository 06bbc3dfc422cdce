"""The agent's own speech, heard back: a satellite next to the speaker records what the agent
says, and without enrolment the first sample kept defines the owner's voice. Utterances that
overlap the agent's own playback (for that profile, or on that Hermes site) are not samples."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TAIL = 1.0  # seconds after the audio's end: playback starts late, rooms echo


class OwnSpeech:
    """When the agent's voice may be in the air, by key (a profile, or ``site:<id>``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}  # key -> end of the latest window
        self._playing: dict[str, int] = {}  # key -> plays started and not finished (Hermes)
        self._lock = threading.Lock()

    def spoke(self, key: str, seconds: float) -> None:
        """Audio of ``seconds`` went out just now (played at once, as far as anyone knows)."""
        with self._lock:
            self._until[key] = max(self._until.get(key, 0.0), self._clock() + seconds + TAIL)

    def started(self, key: str) -> None:
        with self._lock:
            self._playing[key] = self._playing.get(key, 0) + 1

    def finished(self, key: str) -> None:
        with self._lock:
            self._playing[key] = max(0, self._playing.get(key, 0) - 1)
            self._until[key] = max(self._until.get(key, 0.0), self._clock() + TAIL)

    def overlaps(self, keys: tuple[str, ...], seconds: float) -> bool:
        """Whether an utterance of ``seconds`` that ended just now was spoken while the agent spoke."""
        with self._lock:
            start = self._clock() - seconds
            return any(self._playing.get(key, 0) > 0 or self._until.get(key, 0.0) > start for key in keys)
