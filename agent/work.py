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

    def take(self, size: int, own: int = 0) -> bool:
        """Hold ``size`` bytes more, or False (nothing held) when that would pass the limit. ``own``
        of what is held already belong to the same piece of work: alone, it may still grow."""
        with self._lock:
            if self._held > own and self._held + size > self.limit:
                return False
            self._held += size
            return True

    def hold(self, size: int) -> Hold | None:
        """``size`` bytes held for one piece of work until its ``Hold`` is released, or None."""
        return Hold(self, size) if self.take(size) else None

    def release(self, size: int) -> None:
        with self._lock:
            self._held -= size


class Hold:
    """The bytes one piece of work holds in a ``ByteBudget``, from before its body is read (HTTP)
    until it is done. Whoever ends first releases it: the reader that fails, or the job that took
    it over with ``pass_on``; a second release gives back nothing."""

    def __init__(self, budget: ByteBudget, size: int) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self.size = size
        self._released = False

    def grow(self, size: int) -> bool:
        """Hold ``size`` bytes more (a body arriving without a length), or False."""
        with self._lock:
            if self._released or not self._budget.take(size, own=self.size):
                return False
            self.size += size
            return True

    def pass_on(self) -> Hold | None:
        """The same bytes in a new hold (the job's), this one left empty; None once released."""
        with self._lock:
            if self._released:
                return None
            self._released = True
            return Hold(self._budget, self.size)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._budget.release(self.size)
