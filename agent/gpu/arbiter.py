"""One place that decides where GPU work runs: on the GPU when it has room (pausing GPU hogs
if the config allows), else on the CPU; hogs are resumed whatever happens."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from agent.gpu.hogs import HogPauser
from agent.gpu.status import GpuInfo

log = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]
Emit = Callable[[str, dict[str, object]], None]


class GpuArbiter:
    def __init__(self, info: GpuInfo, hogs: HogPauser, emit: Emit, vram_wait_seconds: float = 30.0) -> None:
        self.info = info
        self.hogs = hogs
        self._emit = emit
        self._vram_wait = vram_wait_seconds
        self._holders: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._keys = itertools.count()

    def holders(self) -> list[dict[str, Any]]:
        """Who holds the GPU now: ``{purpose, need_mb, since}`` for each reservation that got it."""
        with self._lock:
            return [dict(h) for h in self._holders.values()]

    @contextmanager
    def _held(self, purpose: str, need_mb: int) -> Iterator[None]:
        with self._lock:
            key = next(self._keys)
            self._holders[key] = {"purpose": purpose, "need_mb": need_mb, "since": time.time()}
        try:
            yield
        finally:
            with self._lock:
                del self._holders[key]

    @contextmanager
    def reserve(self, need_mb: int, purpose: Literal["training", "rvc"], pause_hogs: bool) -> Iterator[Device]:
        """Yield the device to use for work needing ``need_mb`` of VRAM."""
        report = self.info.report()
        if not report.available:
            yield "cpu"
            return
        if report.best_free_mb() >= need_mb:
            with self._held(purpose, need_mb):
                yield "cuda"
            return
        if not pause_hogs:
            log.info("%s: %d MB free, %d MB needed; using the CPU", purpose, report.best_free_mb(), need_mb)
            yield "cpu"
            return
        paused = self.hogs.pause()
        if paused:
            self._emit(f"ollama_paused_for_{purpose}", {"pids": paused, "need_mb": need_mb})
        try:
            if self._wait_for_vram(need_mb):
                with self._held(purpose, need_mb):
                    yield "cuda"
            else:
                yield "cpu"
        finally:
            if paused:
                resumed = self.hogs.resume(paused)
                self._emit(f"ollama_resumed_after_{purpose}", {"pids": resumed})

    def _wait_for_vram(self, need_mb: int) -> bool:
        deadline = time.monotonic() + self._vram_wait
        while time.monotonic() < deadline:
            if self.info.report().best_free_mb() >= need_mb:
                return True
            time.sleep(0.5)
        log.warning("VRAM did not free up after pausing; using the CPU")
        return False
