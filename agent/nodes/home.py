"""The home side of work lent to worker nodes, whatever the work: speech (agent/speak/remote.py)
and training (agent/train/remote.py). This node as its workers know it (its name, its blob route,
its token), the broker link its jobs go out on (the MQTT door's, plugged in at its start), where a
job runs now, and each reply routed to the job that waits for it: only one sealed with the
household's token and naming the job of its correlation; anyone may publish on the broker.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from agent.blobs.index import BlobIndex
from agent.nodes.placement import Bounds, Place
from agent.nodes.registry import NodeRegistry
from agent.nodes.state import NodeState
from agent.nodes.work import ReplyModel, WorkError

log = logging.getLogger(__name__)

# where a job runs (place_speak, place_train): runOn, provider, this node, the nodes online, whether
# work can go out, the named node's last document
Placer = Callable[[str, str, str, Iterable[NodeState], bool, NodeState | None], Place]


class Link(Protocol):
    """What every kind of work needs of the broker; each kind adds how its jobs are sent."""

    def ready(self) -> bool:
        """Connected, with MQTT 5: work may be published and its replies come back."""
        ...


LinkModel = TypeVar("LinkModel", bound=Link)


class WorkHome(Generic[LinkModel, ReplyModel]):
    """One kind of this node's work lent to workers: where it runs, and the jobs waiting for replies."""

    def __init__(self, node: str, url: str, nodes: NodeRegistry, blobs: BlobIndex, token: Callable[[], str],
                 bounds: Bounds, clock: Callable[[], float], place: Placer, read: Callable[[bytes], ReplyModel],
                 what: str) -> None:
        """``token``: the household's (VOICE_AGENT_HTTP_TOKEN), which seals each job and reply;
        ``read`` checks a reply from the broker; ``what`` names a job of this kind in the log."""
        self.node = node
        self.url = url
        self.nodes = nodes
        self.bounds = bounds
        self.clock = clock
        self.link: LinkModel | None = None
        self._blobs = blobs
        self._token = token
        self._place = place
        self._read: Callable[[bytes], ReplyModel] = read
        self._what = what
        self._waiting: dict[str, queue.Queue[ReplyModel]] = {}
        self._lock = threading.Lock()

    def use(self, link: LinkModel) -> None:
        self.link = link

    def place(self, run_on: str, provider: str) -> Place:
        link = self.link
        work_on = link is not None and link.ready() and bool(self.url)
        nodes = self.nodes
        return self._place(run_on, provider, self.node, nodes.online_states(), work_on, nodes.state_of(run_on))

    def wait_for(self, work_id: str) -> queue.Queue[ReplyModel]:
        """The queue the replies to job ``work_id`` come into, until ``done_with``."""
        replies: queue.Queue[ReplyModel] = queue.Queue()
        with self._lock:
            self._waiting[work_id] = replies
        return replies

    def done_with(self, work_id: str) -> None:
        with self._lock:
            self._waiting.pop(work_id, None)

    def replied(self, correlation: bytes, payload: bytes) -> bool:
        """A reply from the broker (the door's thread) into its job's queue; False when no job of
        this kind waits under that correlation (it may be another kind's)."""
        job = correlation.decode(errors="replace")
        with self._lock:
            waiting = self._waiting.get(job)
        if waiting is None:
            return False
        try:
            reply = self._read(payload)
        except WorkError as exc:
            log.warning("ignored a reply to %s %s: %s", self._what, job[:80], exc)
            return True
        if not reply.sealed_by(self._token()):
            log.warning("ignored a reply to %s %s from %s: not sealed with this household's token", self._what,
                        job[:80], reply.node)
        elif reply.id != job:
            log.warning("ignored a reply of job %s under job %s's correlation", reply.id, job[:80])
        else:
            waiting.put(reply)
        return True
