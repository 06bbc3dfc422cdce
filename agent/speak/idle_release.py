"""Memory the speak engines keep for the next sentence, handed back once speech has been idle.

ONNX Runtime keeps the buffers of a voice's largest sentence in its arena (Piper about 100 MB,
Kokoro several hundred: providers/common/onnx_arena.py). Between the sentences of a conversation
that makes each one fast; on a home server that speaks a few times an hour it is memory held for
nothing. So, ``seconds`` after the last request ended with none being spoken, the engines shrink
their arenas and the heap is trimmed, once; the next request pays for faulting its buffers in
again (bench/RESULTS.md "Memory (issue 24)")."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class IdleRelease:
    """Calls ``release`` once each time speech has been idle for ``seconds``."""

    def __init__(self, release: Callable[[], None], seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._release = release
        self._seconds = seconds
        self._clock = clock
        self._busy = 0  # requests being spoken now (one worker per profile)
        self._last = 0.0  # when the last one ended
        self._pending = False  # a request ended since the last release
        self._stopped = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        with self._wake:
            self._busy += 1

    def end(self) -> None:
        with self._wake:
            self._busy = max(0, self._busy - 1)
            self._last = self._clock()
            self._pending = True
            self._wake.notify()

    def wait_seconds(self) -> float | None:
        """Seconds until a release is due; None: none is (nothing spoken since, or speaking now)."""
        with self._wake:
            return self._wait_locked()

    def _wait_locked(self) -> float | None:
        if not self._pending or self._busy:
            return None
        return max(0.0, self._last + self._seconds - self._clock())

    def check(self) -> bool:
        """Release now if speech has been idle long enough; whether it did."""
        with self._wake:
            due = self._pending and not self._busy and self._clock() - self._last >= self._seconds
            if due:
                self._pending = False
        if due:
            try:
                self._release()
            except Exception:  # an engine that cannot shrink keeps its memory; speech goes on
                log.exception("handing back the speak engines' idle memory failed")
        return due

    def start(self) -> IdleRelease:
        self._thread = threading.Thread(target=self._run, name="speak-idle-release", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped:
                    wait = self._wait_locked()
                    if wait is not None and wait <= 0:
                        break
                    self._wake.wait(timeout=wait)
                if self._stopped:
                    return
            self.check()
