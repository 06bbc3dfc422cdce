"""A thread pool for a service's commands that says ``busy`` instead of queueing without end:
300 ``samples.report`` requests cost the agent a refusal each, not 200 MB of waiting work."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from agent.errors import ServiceError

T = TypeVar("T")


class BoundedExecutor:
    def __init__(self, name: str, workers: int, depth: int) -> None:
        self._name = name
        self._depth = depth
        self._pending = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``work`` on the pool, or raise ``ServiceError("busy")`` when ``depth`` already wait or run."""
        with self._lock:
            if self._pending >= self._depth:
                raise ServiceError("busy", f"{self._depth} {self._name} requests are already waiting; try again later")
            self._pending += 1
        try:
            future = self._pool.submit(work, *args)
        except RuntimeError as exc:  # shut down
            self._done(None)
            raise ServiceError("shutting_down", "the agent is stopping") from exc
        future.add_done_callback(self._done)
        return future

    def _done(self, future: object) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


class ByteBudget:
    """The bytes that waiting work holds (recordings to score, stream frames to cut): a flood is
    refused by size, since 16 recordings of 32 MiB are half a gigabyte though few in number.
    One piece of work alone is always taken, however large: what the door let in can be served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        with self._lock:
            return self._held

    def take(self, size: int) -> bool:
        """Hold ``size`` bytes more, or False (nothing held) when that would pass the limit."""
        with self._lock:
            if self._held and self._held + size > self.limit:
                return False
            self._held += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self._held -= size
