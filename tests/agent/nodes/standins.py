"""In-process stand-ins for what lies between a home and its workers, for the tests that run both
in one process: the broker's work topics and a worker's blob cache."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from agent.blobs.index import BlobIndex
from agent.errors import ServiceError

TOKEN = "household"


class Blobs:
    """A worker's cache, as if each file had been fetched: the home's own file by its hash."""

    def __init__(self, index: BlobIndex) -> None:
        self.index = index
        self.asked: list[str] = []

    def get(self, sha256: str, url: str, token: str, size: int | None = None) -> Path:
        self.asked.append(sha256)
        found = self.index.find(sha256)
        if found is None or token != TOKEN:
            raise ServiceError("blob_fetch_failed", f"no blob {sha256}")
        return found


class Home(Protocol):
    """The home's side of remote work (agent/speak/remote.py, agent/train/remote.py)."""

    def replied(self, correlation: bytes, payload: bytes) -> bool | None: ...


class Worker(Protocol):
    def take(self, provider: str, payload: bytes, reply: Callable[[bytes], None]) -> None: ...


@runtime_checkable
class Stoppable(Protocol):
    """A training worker: it can be asked to stop its job."""

    def stop_asked(self, payload: bytes) -> None: ...


class Broker:
    """Shared work goes to each worker in turn (as a shared subscription hands it out), a node's own
    work to that node; a dead node hears and says nothing. The speak link's ``send`` and the train
    link's ``send_work``/``send_stop`` in one, for work of one ``kind``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.home: Home | None = None
        self.workers: Mapping[str, Worker] = {}
        self.dead: set[str] = set()
        self.sent: list[str | None] = []
        self.stops: list[str] = []
        self._turn: Iterator[str] = iter(())

    def connect(self, home: Home, workers: Mapping[str, Worker]) -> None:
        self.home, self.workers = home, workers
        self._turn = itertools.cycle(sorted(workers))

    def ready(self) -> bool:
        return True

    def send(self, provider: str, node: str | None, payload: bytes, correlation: bytes) -> None:
        self.send_work("speak", provider, node, payload, correlation)

    def send_work(self, kind: str, provider: str, node: str | None, payload: bytes, correlation: bytes) -> None:
        assert kind == self.kind
        self.sent.append(node)
        name = node if node is not None else next(self._turn)
        if name in self.dead or name not in self.workers:
            return
        self.workers[name].take(provider, payload, lambda reply: self._reply(name, correlation, reply))

    def _reply(self, node: str, correlation: bytes, payload: bytes) -> None:
        if node not in self.dead and self.home is not None:
            assert self.home.replied(correlation, payload) is not False  # a training home knows each of its jobs

    def send_stop(self, node: str, payload: bytes) -> None:
        self.stops.append(node)
        if node not in self.dead:
            worker = self.workers[node]
            assert isinstance(worker, Stoppable), f"{node} cannot be stopped"
            worker.stop_asked(payload)
