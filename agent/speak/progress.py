"""When each profile's speak worker last showed progress, for the systemd watchdog. A request
that keeps making audio is working however long it takes (a 368 s request under load once
stopped the watchdog as "stuck"); a worker whose engine has made nothing for the limit is stuck."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Heartbeats:
    """Per profile: the time its request began or last made audio, while one is being spoken."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def begin(self, profile: str) -> None:
        with self._lock:
            self._last[profile] = self._clock()

    def beat(self, profile: str) -> None:
        """The profile's request made progress (an engine handed over audio)."""
        with self._lock:
            if profile in self._last:
                self._last[profile] = self._clock()

    def end(self, profile: str) -> None:
        with self._lock:
            self._last.pop(profile, None)

    def working(self, profile: str) -> bool:
        with self._lock:
            return profile in self._last

    def stuck(self, limit_seconds: float) -> list[str]:
        """Profiles whose request has shown no progress for ``limit_seconds`` or more."""
        now = self._clock()
        with self._lock:
            return [profile for profile, last in self._last.items() if now - last >= limit_seconds]
