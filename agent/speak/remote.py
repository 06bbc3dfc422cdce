"""Speech made on another node: the seam between the speak path and the household's workers. The
pipeline asks ``pick`` for an engine; for a provider whose profile says ``runOn`` another node
(and a worker may take it) it gets a ``RemoteEngine``, which behaves as the provider's own engine
would: it yields a sentence's PCM at a time, or raises a ``ProviderError`` whose code
(``no_worker``, ``worker_lost``, ``worker_failed``) makes the pipeline speak here instead, then
with Piper. Cache, streaming, budget and fallback stay the pipeline's.

The transport is the MQTT door's (``WorkLink``, plugged in at its start): the core names no topic.
Replies arrive on the door's network thread (``replied``, agent/nodes/home.py) and wait in the job's queue.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Protocol

from agent.blobs.index import BlobIndex
from agent.nodes.home import Link, WorkHome
from agent.nodes.placement import (ANY_WORKER, NO_WORKER, WORKER_FAILED, WORKER_LOST, Bounds, JobWatch, Place,
                                   place_speak)
from agent.nodes.registry import NodeRegistry
from agent.nodes.work import BlobRef, SpeakWork, WorkError, WorkReply, read_reply
from providers import registry as providers
from providers.base import AudioChunk, Provider, ProviderContext, ProviderError, VoiceInfo
from providers.settings_base import ProviderSettings

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a wait looks at the registry (a worker's last will ends it within this)


class WorkLink(Link, Protocol):
    """The broker as the speak path needs it (agent/mqtt/work.py)."""

    def send(self, provider: str, node: str | None, payload: bytes, correlation: bytes) -> None:
        """Publish a speak job for ``provider``: to any worker (``node`` None) or that node's own topic,
        with this node's response topic and ``correlation``."""
        ...


class RemoteError(ProviderError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class RemoteSpeech(WorkHome[WorkLink, WorkReply]):
    """Where a profile's speech runs, and the jobs waiting for replies."""

    def __init__(self, node: str, url: str, nodes: NodeRegistry, blobs: BlobIndex,
                 bounds: Bounds = Bounds(), clock: Callable[[], float] = time.monotonic,
                 token: Callable[[], str] = str) -> None:
        """``token``: the household's (VOICE_AGENT_HTTP_TOKEN), which seals each job for the worker."""
        super().__init__(node, url, nodes, blobs, token, bounds, clock, place_speak, read_reply, "job")

    def pick(self, run_on: str, provider: str) -> Provider | None:
        """The engine for ``provider`` when ``run_on`` sends it elsewhere now; None: this node's own."""
        if run_on == "local":
            return None
        where = self.place(run_on, providers.canonical(provider))
        if where.node is None and not where.code:
            return None
        return RemoteEngine(self, providers.canonical(provider), where)

    def run(self, provider: str, where: Place, text: str, settings: ProviderSettings, ctx: ProviderContext,
            took: Callable[[str], None]) -> Iterator[AudioChunk]:
        """One piece of text spoken by a worker, a sentence at a time; ``took`` hears which node runs it."""
        if where.code:
            raise RemoteError(where.reason, where.code)
        link = self.link
        if link is None:
            raise RemoteError("this agent has no connection for work", NO_WORKER)
        job = self._job(provider, text, settings, ctx)
        replies = self.wait_for(job.id)
        target = None if where.node == ANY_WORKER else where.node
        try:
            watch = JobWatch(self.bounds, self.clock(), where.workers)
            link.send(provider, target, job.to_json(), job.id.encode())
            seq = 0
            while True:
                verdict = watch.verdict(self.clock())
                if verdict.action == "done":
                    return
                if verdict.action == "fail":
                    log.warning("speak job %s (%s): %s (%s)", job.id, provider, verdict.reason, verdict.code)
                    raise RemoteError(verdict.reason, verdict.code)
                if verdict.action == "retry":
                    watch.resent(self.clock())
                    link.send(provider, target, job.to_json(), job.id.encode())
                    continue
                if watch.worker is not None and not self.nodes.online(watch.worker):
                    watch.lost(watch.worker)  # its last will: not a moment longer
                    continue
                try:
                    reply = replies.get(timeout=max(0.0, min(POLL_S, verdict.until - self.clock())))
                except queue.Empty:
                    continue
                now = self.clock()
                if reply.kind != "declined" and watch.worker is None:  # its first word, whichever it is
                    took(reply.node)
                    watch.accepted(reply.node, now)
                if reply.kind == "accepted":
                    watch.accepted(reply.node, now)
                elif reply.kind == "declined":
                    watch.declined(reply.node, reply.code, reply.message, now)
                elif reply.node != watch.worker:
                    continue  # a worker that lost the race to take it
                elif reply.kind == "alive":
                    watch.alive(reply.node, now)
                elif reply.kind == "failed":
                    watch.failed(reply.node, reply.code, reply.message)
                elif reply.kind == "done":
                    if reply.seq != seq:
                        raise RemoteError(f"worker {reply.node} said {reply.seq} sentences, {seq} came", WORKER_LOST)
                    watch.done()
                elif reply.kind == "chunk":
                    watch.audio(reply.node, now)
                    if reply.seq != seq:
                        raise RemoteError(f"sentence {reply.seq} of worker {reply.node} came after {seq}", WORKER_LOST)
                    try:
                        pcm = reply.audio()
                    except WorkError as exc:
                        raise RemoteError(str(exc), WORKER_FAILED) from exc
                    seq += 1
                    yield AudioChunk(pcm, reply.sample_rate)
        finally:
            self.done_with(job.id)

    def _job(self, provider: str, text: str, settings: ProviderSettings, ctx: ProviderContext) -> SpeakWork:
        remote = providers.spec(provider).remote
        if remote is None:
            raise RemoteError(f"{provider} speaks only where its profile is", NO_WORKER)
        files: dict[str, BlobRef] = {}
        for role, path in remote.inputs(settings, ctx).items():
            sha = self._blobs.hash_of(path)
            if sha is None:
                if role in remote.required:
                    raise RemoteError(f"{path} is not among the files this node lends (its voices folders)", NO_WORKER)
                continue  # the worker uses its own
            files[role] = BlobRef(sha256=sha, size=path.stat().st_size, name=path.name)
        return SpeakWork(id=f"{self.node}-{uuid.uuid4().hex[:12]}", home=self.node, home_url=self.url,
                         provider=provider, text=text, settings=settings.model_dump(mode="json", by_alias=True),
                         files=files).sealed(self._token())


class RemoteEngine:
    """The provider's engine as the pipeline sees it, its synthesis made by a worker. One per
    request: ``ran_on`` says which node took it."""

    def __init__(self, speech: RemoteSpeech, provider: str, where: Place) -> None:
        self.name = provider
        self._speech = speech
        self._where = where
        self.ran_on: str | None = None

    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        def took(node: str) -> None:
            self.ran_on = node

        return self._speech.run(self.name, self._where, text, settings, ctx, took)

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        return []

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        return ""  # the pipeline keys its cache with this node's own engine: the same files, the same audio

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        pass

    def close(self) -> None:
        pass
