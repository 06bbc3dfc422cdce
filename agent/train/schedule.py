"""When may a job run? In the idle window and after N quiet minutes (no speak/record traffic).

The clock is passed in, so the rules are tested with a controllable one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time
from typing import Any

WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
ACTIVITY_EVENTS = ("speak.started", "sample.captured", "sample.rejected", "stream.started")


def parse_window(text: str) -> tuple[clock_time, clock_time]:
    match = WINDOW.match(text)
    if not match:
        raise ValueError(f"idle window must look like 01:00-06:00, not {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return clock_time(h1, m1), clock_time(h2, m2)


def in_window(now: datetime, window: tuple[clock_time, clock_time]) -> bool:
    start, end = window
    current = now.time()
    if start <= end:
        return start <= current < end
    return current >= start or current < end  # the window crosses midnight


@dataclass
class IdlePolicy:
    window: tuple[clock_time, clock_time]
    quiet_seconds: float
    now: Callable[[], datetime] = datetime.now
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._last_activity = self.monotonic() - self.quiet_seconds  # quiet since start
        self._lock = threading.Lock()

    def on_event(self, profile: str, name: str, data: dict[str, Any]) -> None:
        """EventBus listener: speech and recordings are household activity."""
        if name in ACTIVITY_EVENTS:
            self.touch()

    def touch(self) -> None:
        with self._lock:
            self._last_activity = self.monotonic()

    def quiet_for(self) -> float:
        with self._lock:
            return self.monotonic() - self._last_activity

    def is_idle(self) -> bool:
        return in_window(self.now(), self.window) and self.quiet_for() >= self.quiet_seconds

    def why_waiting(self) -> str:
        if not in_window(self.now(), self.window):
            start, end = self.window
            return f"waiting for the idle window {start:%H:%M}-{end:%H:%M}"
        return f"waiting for {self.quiet_seconds - self.quiet_for():.0f} s more without speech or recordings"
