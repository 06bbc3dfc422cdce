"""This agent as a node: its state document kept current, and the registry of the household's
nodes. The MQTT door publishes the document (retained, with ``offline`` as its last will) and
feeds the registry what it hears; the HTTP door shows the registry.

The document is rebuilt on the node's own thread: when ``changed`` says a state document of the
agent changed (the GPU report every minute, a profile's queue) and it says something new; and
every ``refresh_s`` regardless (an engine started, and the heartbeat readers tell a live node
from a stale one by). ``changed`` only wakes that thread: it is called from whichever thread
updated a state, perhaps holding its own locks; the thread then waits ``SETTLE_S``, so a request's
burst of changes makes one rebuild, after its answer.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from agent.nodes.registry import NodeRegistry
from agent.nodes.state import Ability, NodeState, Queues, build_state

log = logging.getLogger(__name__)

REFRESH_S = 60.0  # the heartbeat: a node's document is published at least this often
SETTLE_S = 1.0  # seconds a change waits, so the changes of one request make one rebuild (measured: a
# rebuild inside a cache hit's answer cost it about 1.5 ms of its 4)
StateListener = Callable[[NodeState], None]


@dataclass(frozen=True)
class NodeSources:
    """Where the figures come from (the core's services; tests pass their own)."""

    profiles: Callable[[], list[str]]
    abilities: Callable[[], list[Ability]]
    gpu: Callable[[], dict[str, object]]  # the "gpu" state document
    queues: Callable[[], Queues]


class NodeService:
    def __init__(self, node: str, version: str, worker: bool, url: str, sources: NodeSources,
                 refresh_s: float = REFRESH_S, clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.worker = worker
        self.url = url
        self.instance = uuid.uuid4().hex[:12]
        self.registry = NodeRegistry()
        self._version = version
        self._sources = sources
        self._refresh_s = refresh_s
        self._clock = clock
        self._listeners: list[StateListener] = []
        self._current: NodeState | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="node-state", daemon=True)

    def watch(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def document(self) -> NodeState:
        """The document now (built on first use)."""
        with self._lock:
            current = self._current
        return current if current is not None else self.refresh(tell=False)

    def refresh(self, force: bool = False, tell: bool = True) -> NodeState:
        """Rebuild the document; listeners hear it when it changed (or ``force``: the heartbeat)."""
        try:
            state = build_state(self.node, self.instance, self._version, self.worker, self.url, self._sources.profiles(),
                                self._sources.abilities(),
                                dict(self._sources.gpu()), self._sources.queues(), self._refresh_s, self._clock())
        except Exception:  # a source that fails must not stop the others: say the last document again
            log.exception("node state: a figure could not be read")
            with self._lock:
                if self._current is None:
                    raise
                state = self._current
        with self._lock:
            changed = not state.same_as(self._current)
            if changed or force:
                self._current = state
        if tell and (changed or force):
            for listener in list(self._listeners):
                try:
                    listener(state)
                except Exception:
                    log.exception("node state listener failed")
        return state

    def heard(self, node: str, payload: bytes) -> None:
        """A node's document from the broker, into the registry; one that says it is this node but
        is another agent's (two agents that took one name would take turns at being it) is an error
        in the log, each time."""
        if not self.registry.heard(node, payload) or node != self.node:
            return
        found = self.registry.state_of(node)
        if found is not None and found.status == "online" and found.instance not in ("", self.instance):
            log.error("another agent publishes as node %r (its instance %s, ours %s): give each agent its own "
                      "VOICE_AGENT_NODE", node, found.instance, self.instance)

    def changed(self) -> None:
        """Something the document says may have changed: rebuild it soon, on the node's thread."""
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        deadline = time.monotonic() + self._refresh_s
        while True:
            woken = self._wake.wait(max(0.0, deadline - time.monotonic()))
            if self._stop.is_set():
                return
            self._wake.clear()
            if woken and self._stop.wait(SETTLE_S):  # a request's state changes come in a burst: one rebuild
                return                                # after it, not one inside its answer's time
            beat = time.monotonic() >= deadline
            if beat:
                deadline = time.monotonic() + self._refresh_s
            if woken or beat:
                self.refresh(force=beat)
