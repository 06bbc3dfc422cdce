"""Where a profile's speech is made, and when to stop waiting for a worker: pure decisions, fed
what the registry knows and a clock, so they are tested without a broker.

``runOn`` (voice.json, per provider) says ``local``, ``auto`` (a worker when an online one has the
provider, else here) or a node's name. A job is published once a worker may take it; the home
then waits, each wait bounded so that a dead worker cannot stretch it: ``first_reply_s`` for a
first word (accepted or declined), ``silence_s`` between words once a worker runs it (it says
``alive`` while it works), and not a moment once the registry hears that worker go offline (its
last will). A decline is published again while another worker may take it, at most ``tries``
times in all; then the home speaks itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.nodes.state import NodeState

LOCAL = "local"
AUTO = "auto"
ANY_WORKER = "*"  # a job for whichever worker the broker hands it to (the shared work topic)

NO_WORKER = "no_worker"  # no worker could take it: none online, none answered, all declined
WORKER_LOST = "worker_lost"  # the worker that took it went away before it finished
WORKER_FAILED = "worker_failed"  # the worker ran it and failed (a file it could not fetch, its engine)
REMOTE_CODES = frozenset({NO_WORKER, WORKER_LOST, WORKER_FAILED})  # the home speaks itself, then Piper


@dataclass(frozen=True)
class Place:
    """``node`` None: here; ``ANY_WORKER``: the shared work topic; else that node's own. ``code``
    and ``reason``: why it is here though ``runOn`` asked for another node."""

    node: str | None
    code: str = ""
    reason: str = ""
    workers: int = 1  # the workers that may take it: a decline is tried again only while another may


def can_take(state: NodeState, provider: str) -> bool:
    """Whether the node's document says it takes others' work with ``provider``."""
    return state.worker and any(ability.provider == provider for ability in state.providers)


def can_train(state: NodeState, provider: str) -> bool:
    """Whether the node's document says it takes others' training jobs for ``provider``."""
    return state.worker and any(ability.provider == provider and ability.trains for ability in state.providers)


def place_speak(run_on: str, provider: str, here: str, online: Iterable[NodeState], work_on: bool,
                known: NodeState | None = None) -> Place:
    """Where speech with ``provider`` runs. ``online``: the nodes online now; ``known``: the named
    node's last document (online or not); ``work_on``: whether this node can publish work (MQTT 5)."""
    return _place(run_on, provider, here, online, work_on, known, can_take, "work")


def place_train(run_on: str, provider: str, here: str, online: Iterable[NodeState], work_on: bool,
                known: NodeState | None = None) -> Place:
    """Where a training job of ``provider`` runs (voice.json ``runOn.train``): as ``place_speak``,
    among the nodes whose document lists the provider's trainer."""
    return _place(run_on, provider, here, online, work_on, known, can_train, "training")


def _place(run_on: str, provider: str, here: str, online: Iterable[NodeState], work_on: bool,
           known: NodeState | None, able: Callable[[NodeState, str], bool], what: str) -> Place:
    if run_on in (LOCAL, here):
        return Place(None)
    if run_on == AUTO:
        takers = [state for state in online if state.node != here and able(state, provider)]
        return Place(ANY_WORKER, workers=len(takers)) if work_on and takers else Place(None)
    if not work_on:
        return Place(None, NO_WORKER, f"runOn names node {run_on!r}, and this agent is a single node (its broker "
                                      "lacks MQTT 5)")
    if any(state.node == run_on for state in online):
        if known is not None and not able(known, provider):
            return Place(None, NO_WORKER, f"node {run_on!r} takes no {provider} {what} (VOICE_AGENT_WORKER, its providers)")
        return Place(run_on)
    said = "has not been heard of" if known is None else "is offline"
    return Place(None, NO_WORKER, f"node {run_on!r} {said}")


@dataclass(frozen=True)
class Bounds:
    first_reply_s: float = 3.0  # a worker answers (accepted or declined) from its network thread
    # a worker that runs a job says alive every second, but an engine that holds the GIL (torch's
    # first import, pyworld's harvest) stops its whole process for seconds on a busy CPU; a dead
    # worker's last will ends the wait long before this
    silence_s: float = 30.0
    tries: int = 3  # publishes of one job in all (a decline goes to another worker)
    # between the job taken and its first sentence, and from one sentence to the next: an engine
    # that hangs on the worker goes on saying alive from another thread (the first sentence may
    # wait for a model's transfer and first load: minutes on a slow LAN)
    audio_s: float = 300.0
    output: str = "audio"  # what the work sends back in the words of a verdict (a training job's: progress)


@dataclass(frozen=True)
class Verdict:
    """``wait`` (until ``until``), ``retry`` (publish again), ``done``, or ``fail`` with a code."""

    action: str
    until: float = 0.0
    code: str = ""
    reason: str = ""


class JobWatch:
    """One remote job's progress as the home sees it; ``verdict`` says what to do now."""

    def __init__(self, bounds: Bounds, now: float, workers: int = 1) -> None:
        """``workers``: how many may take the job (a decline of the only one is not tried again)."""
        self.bounds = bounds
        self.most_tries = max(1, min(bounds.tries, workers))
        self.tries = 1
        self.sent = now
        self.worker: str | None = None
        self.heard_at = now
        self.audio_at = now  # when the worker took it, then when its last sentence came
        self.finished = False
        self.failure: tuple[str, str] | None = None
        self.declines: list[str] = []

    def accepted(self, node: str, now: float) -> None:
        if self.worker is None:
            self.worker = node
            self.audio_at = now
        self.heard_at = now

    def alive(self, node: str, now: float) -> None:
        if node == self.worker:
            self.heard_at = now

    def audio(self, node: str, now: float) -> None:
        """A sentence from the worker: alive, and another ``audio_s`` for the next."""
        if node == self.worker:
            self.heard_at = self.audio_at = now

    def declined(self, node: str, code: str, message: str, now: float) -> None:
        if self.worker is None:
            self.declines.append(f"{node}: {message or code}")

    def done(self) -> None:
        self.finished = True

    def failed(self, node: str, code: str, message: str) -> None:
        self.failure = (WORKER_FAILED, f"worker {node} failed ({code}): {message}")

    def lost(self, node: str) -> None:
        """The registry says ``node`` went offline."""
        if node == self.worker and not self.finished:
            self.failure = (WORKER_LOST, f"worker {node} went offline during the job")

    def resent(self, now: float) -> None:
        self.tries += 1
        self.sent = self.heard_at = now

    def verdict(self, now: float) -> Verdict:
        if self.finished:
            return Verdict("done")
        if self.failure is not None:
            return Verdict("fail", code=self.failure[0], reason=self.failure[1])
        if self.worker is not None:
            until = self.heard_at + self.bounds.silence_s
            if now >= until:
                return Verdict("fail", code=WORKER_LOST, reason=f"no word from worker {self.worker} for "
                               f"{self.bounds.silence_s:g} s")
            if now >= self.audio_at + self.bounds.audio_s:
                return Verdict("fail", code=WORKER_LOST, reason=f"worker {self.worker} says it is alive and sent no "
                               f"{self.bounds.output} for {self.bounds.audio_s:g} s")
            return Verdict("wait", until=min(until, self.audio_at + self.bounds.audio_s))
        if len(self.declines) >= self.tries:  # this try was declined
            if self.tries < self.most_tries:
                return Verdict("retry")
            return Verdict("fail", code=NO_WORKER, reason=f"every try was declined ({'; '.join(self.declines)})")
        until = self.sent + self.bounds.first_reply_s
        if now >= until:
            return Verdict("fail", code=NO_WORKER, reason=f"no worker answered within {self.bounds.first_reply_s:g} s")
        return Verdict("wait", until=until)
