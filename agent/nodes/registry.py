"""The household's nodes as this node hears them on ``<base>/node/+/state``: pure logic, fed the
topic's node name and the payload, asked what is known now.

A node is online while its last document says so and it was heard from within ``STALE_AFTER``
of its own refresh interval (a retained ``online`` can outlive its node: a broker that crashed
sends no last wills). Its last will (``offline``) keeps what it said before beside the word, so a
switched-off GPU desktop still shows what it has. An empty retained payload forgets the node.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent.nodes.state import MAX_DOCUMENT_BYTES, NODE_NAME, NodeState

log = logging.getLogger(__name__)

STALE_AFTER = 3.0  # refresh intervals without a word after which an "online" node counts as gone
MAX_NODES = 256  # a household has a handful; anyone who may publish on the broker could make up millions


@dataclass(frozen=True)
class Known:
    state: NodeState  # the last document that said what the node has
    status: str  # "online" or "offline", as the node (or its will) said last
    heard: float  # the reader's clock when it was heard


class NodeRegistry:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._nodes: dict[str, Known] = {}
        self._lock = threading.Lock()

    def heard(self, node: str, payload: bytes) -> bool:
        """Take one message of ``<base>/node/<node>/state``; False (and a log line) when it is not a
        node's document, and then nothing changes."""
        if not NODE_NAME.fullmatch(node):
            log.warning("ignored a node state on a topic whose node %r is not a node name", node[:80])
            return False
        if not payload:
            with self._lock:
                self._nodes.pop(node, None)
            return True
        if len(payload) > MAX_DOCUMENT_BYTES:
            log.warning("ignored node %s's state: %d bytes, more than %d", node, len(payload), MAX_DOCUMENT_BYTES)
            return False
        try:
            state = NodeState.model_validate(json.loads(payload))
        except (ValueError, ValidationError) as exc:
            log.warning("ignored node %s's state: not a node document (%s)", node, str(exc).splitlines()[0][:200])
            return False
        if state.node != node:
            log.warning("ignored a state of node %r published on node %r's topic", state.node[:80], node)
            return False
        now = self._clock()
        with self._lock:
            before = self._nodes.get(node)
            if before is None and len(self._nodes) >= MAX_NODES and not self._make_room(now):
                log.warning("ignored node %s's state: %d nodes known, all online", node, len(self._nodes))
                return False
            kept = before.state if state.status == "offline" and before is not None else state
            self._nodes[node] = Known(kept, state.status, now)
        return True

    def _make_room(self, now: float) -> bool:
        """Forget the node not online that was heard from longest ago (under the lock); False when
        every node is online."""
        gone = [(entry.heard, name) for name, entry in self._nodes.items() if not self._online(entry, now)]
        if not gone:
            return False
        del self._nodes[min(gone)[1]]
        return True

    def state_of(self, node: str) -> NodeState | None:
        """The last document heard from ``node`` (its will's status with what it said before)."""
        with self._lock:
            known = self._nodes.get(node)
        return None if known is None else known.state.model_copy(update={"status": known.status})

    def online(self, node: str) -> bool:
        with self._lock:
            known = self._nodes.get(node)
        return known is not None and self._online(known, self._clock())

    def _online(self, known: Known, now: float) -> bool:
        return known.status == "online" and now - known.heard <= STALE_AFTER * known.state.refresh_s

    def online_states(self) -> list[NodeState]:
        """The documents of the nodes online now, by name."""
        now = self._clock()
        with self._lock:
            known = sorted(self._nodes.items())
        return [entry.state for _, entry in known if self._online(entry, now)]

    def home_of(self, profile: str, besides: str = "") -> str | None:
        """The online node (other than ``besides``) whose document lists ``profile``, or None."""
        now = self._clock()
        with self._lock:
            known = list(self._nodes.items())
        for name, entry in sorted(known):
            if name != besides and profile in entry.state.profiles and self._online(entry, now):
                return name
        return None

    def nodes(self) -> list[dict[str, Any]]:
        """Every node heard of, by name: its document, ``online``, ``stale`` (said online, not heard
        from for too long) and the seconds since it was heard."""
        now = self._clock()
        with self._lock:
            known = dict(self._nodes)
        found = []
        for name in sorted(known):
            entry = known[name]
            online = self._online(entry, now)
            found.append({**entry.state.model_dump(mode="json"), "status": entry.status, "online": online,
                          "stale": entry.status == "online" and not online, "free_vram_mb": entry.state.free_vram_mb,
                          "heard_s_ago": round(now - entry.heard, 1)})
        return found
