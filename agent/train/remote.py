"""A training job of this home run by a worker node (voice.json ``runOn.train``): the home side.

The runner runs it as it runs any job; only its process is a ``RemoteJob``, which speaks the job
process's protocol (progress lines, a result line, an exit code) from the worker's replies. The
job names its dataset files and the last checkpoint this home holds by SHA-256 (the worker fetches
them from the blob route); the worker sends its progress, each checkpoint's files and, at the end,
the trained files, each with its SHA-256: in its reply when they fit one, else offered on its own
blob route, from which this home fetches them by hash the way the worker fetched the dataset
(agent/blobs/cache.py: token, resumed, verified) and then releases them. Whatever a reply brings is
received whole or not at all (agent/train/received.py) before it becomes a checkpoint or a voice.

A worker that goes offline (its last will), falls silent, or sends no progress for too long is a
death of the job process: the runner queues the job again, and its next start resumes from the
checkpoint held here, on whichever worker takes it. A job no worker takes says ``no_worker``.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import ValidationError

from agent.blobs.cache import BlobCache
from agent.blobs.index import BlobIndex
from agent.errors import ServiceError
from agent.nodes.home import Link, WorkHome
from agent.nodes.placement import ANY_WORKER, NO_WORKER, WORKER_LOST, Bounds, JobWatch, Place, place_train
from agent.nodes.registry import NodeRegistry
from agent.nodes.work import (BlobRef, Release, StopWork, TrainProgress, TrainReply, TrainWork, WorkError,
                              read_train_reply)
from agent.train.jobs import Job
from agent.train.received import Fetch, held_checkpoint, keep_checkpoint, land_outputs
from agent.train.runner import Launch, RemoteStart

log = logging.getLogger(__name__)

# a worker answers from its network thread; says alive every second from its agent (the trainer runs
# in a process of its own); a trainer's first step may wait for its models' first load (minutes)
TRAIN_BOUNDS = Bounds(first_reply_s=5.0, silence_s=30.0, tries=3, audio_s=900.0, output="progress")
BUSY_RETRY_S = 10.0  # every worker declined as busy: published again after this
BUSY_WAIT_S = 600.0  # and for this long at most, then no_worker
STOP_WAIT_S = 50.0  # a stop asked of the worker: its last checkpoint and word within this (the runner waits 60)
POLL_S = 0.2
FETCH_TRIES = 3  # a broken transfer of a worker's file resumes this many times in all


class TrainLink(Link, Protocol):
    """The broker as remote training needs it (the MQTT door's node connection)."""

    def send_work(self, kind: str, provider: str, node: str | None, payload: bytes, correlation: bytes) -> None: ...

    def send_stop(self, node: str, payload: bytes) -> None: ...


class RemoteTraining(WorkHome[TrainLink, TrainReply]):
    """Where this home's training jobs run, and the remote jobs waiting for replies."""

    def __init__(self, node: str, url: str, nodes: NodeRegistry, blobs: BlobIndex, token: Callable[[], str] = str,
                 bounds: Bounds = TRAIN_BOUNDS, clock: Callable[[], float] = time.monotonic,
                 cache: BlobCache | None = None) -> None:
        """``cache``: where a worker's offered files are fetched into (this node's blob cache: the
        one fetch, verify and resume of files by hash), then taken out."""
        super().__init__(node, url, nodes, blobs, token, bounds, clock, place_train, read_train_reply, "training job")
        self._cache = cache

    def seal(self, message: StopWork | Release) -> StopWork | Release:
        return message.sealed(self._token())

    def fetcher(self, reply: TrainReply) -> Fetch | None:
        """How the files ``reply`` offers are fetched: from the worker's own door (the one its state
        document names: the token goes to no other), by hash, a broken transfer resumed. None when
        it offers none; ``WorkError`` when its door is not the one the reply names."""
        if not reply.fetch:
            return None
        state = self.nodes.state_of(reply.node)
        door = state.url if state is not None else ""
        if self._cache is None or not door or door != reply.url:
            raise WorkError(f"worker {reply.node} offers its files at {reply.url or 'no address'}, and its state "
                            f"document says {door or 'none'}: nothing fetched")
        cache, token = self._cache, self._token()

        def fetch(ref: BlobRef, target: Path) -> None:
            for attempt in range(1, FETCH_TRIES + 1):
                try:
                    cache.take(ref.sha256, door, token, target, size=ref.size)
                    return
                except ServiceError as exc:
                    if exc.code != "blob_fetch_failed" or attempt == FETCH_TRIES:
                        raise
                    log.info("fetching %s from %s again: %s", ref.name, reply.node, exc)

        return fetch

    def starter(self, where: Place) -> RemoteStart:
        """The runner's start of a job that ``where`` sends to a worker."""
        def start(job: Job, launch: Launch, document: dict[str, Any], log_file: IO[str]) -> RemoteJob:
            return RemoteJob(self, job, launch, where, log_file).start()

        return start

    def work_for(self, job: Job, launch: Launch) -> TrainWork:
        """The job as a worker gets it: its dataset and held checkpoint by hash, sealed."""
        dataset = [self._lent(path) for path in sorted(launch.dataset_dir.iterdir())
                   if path.is_file() and not path.name.startswith(".")] if launch.dataset_dir.is_dir() else []
        if not dataset:
            raise ServiceError("not_ready", f"no dataset files in {launch.dataset_dir}")
        held, step = held_checkpoint(launch.checkpoint_dir)
        checkpoint = []
        if held is not None:
            try:
                checkpoint = [self._lent(path) for path in sorted(held.iterdir()) if path.is_file()]
            except ServiceError as exc:
                log.warning("job %s starts afresh: %s", job.id, exc)
                checkpoint, step = [], 0
        try:
            return TrainWork(id=f"{job.id}.{uuid.uuid4().hex[:6]}", job=job.id, home=self.node, home_url=self.url,
                             profile=job.profile, provider=job.provider, speaker=job.speaker, params=job.params,
                             dataset=dataset, checkpoint=checkpoint, step=step).sealed(self._token())
        except ValidationError as exc:
            raise ServiceError("not_lendable", f"job {job.id} cannot go to a worker: {exc.errors()[0]['msg']}") from exc

    def _lent(self, path: Path) -> BlobRef:
        sha = self._blobs.hash_of(path)
        if sha is None:
            raise ServiceError("not_lendable", f"{path} is not among the files this node lends to workers (its voices "
                                               "and training folders, the kinds kept)")
        try:
            return BlobRef(sha256=sha, size=path.stat().st_size, name=path.name)
        except ValidationError as exc:
            raise ServiceError("not_lendable", f"{path.name!r} cannot be named to a worker: letters, digits, "
                                               "'_', '.' and '-' only") from exc


class RemoteJob:
    """One start of a job on a worker, as the runner sees a job process."""

    def __init__(self, home: RemoteTraining, job: Job, launch: Launch, where: Place, log_file: IO[str]) -> None:
        self.pid: int | None = None
        self.lost: tuple[str, str] | None = None  # (code, words) when the worker went away: the runner resumes
        self.worker: str | None = None
        self._home = home
        self._job = job
        self._launch = launch
        self._where = where
        self._log = log_file
        self.work = home.work_for(job, launch)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stdout = iter(self._lines.get, None)
        self._replies = home.wait_for(self.work.id)
        self._ended = threading.Event()
        self._code = 0
        self._stop = threading.Event()
        self._killed = threading.Event()
        self._stop_sent: float | None = None
        self._stopped_itself = ""
        self._declined: list[str] = []  # the codes of this publish's declines
        self._offering: set[str] = set()  # the workers that offered files for this try

    def start(self) -> "RemoteJob":
        threading.Thread(target=self._drive, name=f"remote-train-{self._job.id}", daemon=True).start()
        return self

    # -- the job process's side, for the runner -------------------------------------------------
    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"training job {self._job.id} on {self.worker}", timeout or 0)
        return self._code

    def send_signal(self, sig: int) -> None:
        """Checkpoint and stop (a cancel, a pause, the agent stopping): asked of the worker."""
        self._stop.set()

    def kill(self) -> None:
        self._killed.set()

    # -- following the worker ------------------------------------------------------------------
    def _drive(self) -> None:
        try:
            self._code = self._run()
        except Exception as exc:  # a bug here must not leave the runner waiting for ever
            log.exception("training job %s on a worker", self._job.id)
            self.lost = (WORKER_LOST, f"following the worker failed: {exc}")
            self._code = 1
        finally:
            for worker in sorted(self._offering):  # what they still offer for this try goes
                self._release(worker, [])
            self._home.done_with(self.work.id)
            self._lines.put(None)
            self._ended.set()

    def _publish(self) -> None:
        link = self._home.link
        if link is None:
            raise ServiceError(NO_WORKER, "this agent has no connection for work")
        target = None if self._where.node == ANY_WORKER else self._where.node
        link.send_work("train", self._job.provider, target, self.work.to_json(), self.work.id.encode())

    def _run(self) -> int:
        clock, bounds = self._home.clock, self._home.bounds
        self._say(f"published for {self._where.node if self._where.node != ANY_WORKER else 'any worker'}"
                  + (f", resuming from the checkpoint of step {self.work.step}" if self.work.checkpoint else ""))
        self._publish()
        watch = JobWatch(bounds, clock(), self._where.workers)
        busy_since: float | None = None
        while True:
            now = clock()
            if self._killed.is_set():
                return -9
            self._ask_to_stop(watch, now)
            if self._stop_sent is not None and now - self._stop_sent > STOP_WAIT_S:
                self._say(f"worker {self.worker} said no last word within {STOP_WAIT_S:g} s of the stop")
                return 1
            verdict = watch.verdict(now)
            if verdict.action == "done":
                if self._stopped_itself:
                    self.lost = (WORKER_LOST, self._stopped_itself)
                    return 1
                return 0
            if verdict.action == "fail":
                if watch.worker is None and self._stop.is_set():
                    return 0
                if watch.worker is None and self._declined and all(code == "busy" for code in self._declined):
                    busy_since = busy_since if busy_since is not None else now
                    if now - busy_since < BUSY_WAIT_S:
                        self._say(f"every worker is busy ({'; '.join(watch.declines)}); trying again in {BUSY_RETRY_S:g} s")
                        if self._stop.wait(BUSY_RETRY_S) or self._killed.is_set():
                            continue
                        self._declined.clear()
                        self._publish()
                        watch = JobWatch(bounds, clock(), self._where.workers)
                        continue
                if watch.worker is None:
                    self._say(f"no worker: {verdict.reason}")
                    self._result({"status": "failed", "code": NO_WORKER, "error": f"no worker took the job: {verdict.reason}"})
                    return 0
                self.lost = (verdict.code, verdict.reason)
                self._say(verdict.reason)
                return 1
            if verdict.action == "retry":
                watch.resent(now)
                self._publish()
                continue
            if watch.worker is not None and not self._home.nodes.online(watch.worker):
                watch.lost(watch.worker)
                continue
            try:
                reply = self._replies.get(timeout=max(0.0, min(POLL_S, verdict.until - clock())))
            except queue.Empty:
                continue
            self._heard(watch, reply, clock())

    def _ask_to_stop(self, watch: JobWatch, now: float) -> None:
        link = self._home.link
        if not self._stop.is_set() or self._stop_sent is not None or watch.worker is None or link is None:
            return
        stop = self._home.seal(StopWork(id=self.work.id, home=self._home.node))
        link.send_stop(watch.worker, stop.to_json())
        self._stop_sent = now
        self._say(f"asked worker {watch.worker} to checkpoint and stop")

    def _release(self, worker: str, hashes: list[str]) -> None:
        link = self._home.link
        if link is not None:
            release = self._home.seal(Release(id=self.work.id, home=self._home.node, files=hashes))
            link.send_stop(worker, release.to_json())

    def _fetcher(self, reply: TrainReply) -> Fetch | None:
        """The fetch of the files ``reply`` offers; each fetched one is released on the worker."""
        fetch = self._home.fetcher(reply)
        if fetch is None:
            return None
        self._offering.add(reply.node)

        def fetched(ref: BlobRef, target: Path) -> None:
            fetch(ref, target)
            self._say(f"fetched {ref.name} ({ref.size} bytes) from {reply.node} by hash")
            self._release(reply.node, [ref.sha256])

        return fetched

    def _heard(self, watch: JobWatch, reply: TrainReply, now: float) -> None:
        if reply.kind == "declined":
            watch.declined(reply.node, reply.code, reply.message, now)
            self._declined.append(reply.code)
            self._say(f"declined by {reply.node} ({reply.code}): {reply.message}")
            return
        if watch.worker is None:
            watch.accepted(reply.node, now)
            self.worker = reply.node
            self._say(f"taken by worker {reply.node}")
        elif reply.node != watch.worker:
            return  # a worker that lost the race to take it
        if reply.kind in ("accepted", "alive"):
            watch.alive(reply.node, now)
        elif reply.kind == "progress":
            watch.audio(reply.node, now)
            self._progress(reply)
            watch.audio(reply.node, self._home.clock())  # a fetch may take a while: the worker was there
        elif reply.kind == "failed":
            watch.failed(reply.node, reply.code, reply.message)
            self._say(f"worker {reply.node} failed ({reply.code}): {reply.message}")
        elif reply.kind == "done":
            self._done(watch, reply)

    def _progress(self, reply: TrainReply) -> None:
        progress = reply.progress or TrainProgress()
        kept = False
        if reply.files or reply.fetch:
            try:
                where = keep_checkpoint(self._launch.checkpoint_dir, reply.files, progress.step, reply.fetch,
                                        self._fetcher(reply))
            except (WorkError, ServiceError, OSError) as exc:
                self._say(f"the checkpoint of step {progress.step} from {reply.node} was not kept: {exc}")
            else:
                kept = True
                self._say(f"checkpoint of step {progress.step} kept ({where.name}, "
                          f"{len(reply.files) + len(reply.fetch)} files)")
        self._line({"type": "progress", **progress.model_dump(), "checkpoint": kept, "node": reply.node})

    def _done(self, watch: JobWatch, reply: TrainReply) -> None:
        if reply.status == "finished":
            try:
                outputs = land_outputs(self._launch.output_dir, reply.files, reply.fetch, self._fetcher(reply),
                                       staging=self._launch.checkpoint_dir)
            except (WorkError, ServiceError, OSError) as exc:
                watch.failed(reply.node, exc.code if isinstance(exc, ServiceError) else "blob_corrupt",
                             f"its trained files were not kept: {exc}")
                self._say(f"the trained files from {reply.node} were not kept: {exc}")
                return
            self._say(f"trained files kept: {', '.join(p.name for p in outputs)}")
            self._result({"status": "finished", "outputs": [str(p) for p in outputs], "metrics": reply.metrics})
        elif reply.status == "refused":
            self._result({"status": "refused", "error": reply.message})
        elif not self._stop.is_set():  # it stopped of its own accord (its agent is stopping)
            self._stopped_itself = f"worker {reply.node} stopped the job ({reply.message or 'its agent is stopping'})"
        watch.done()

    def _line(self, message: dict[str, Any]) -> None:
        self._lines.put(json.dumps(message) + "\n")

    def _result(self, message: dict[str, Any]) -> None:
        self._line({"type": "result", **message})

    def _say(self, words: str) -> None:
        log.info("training job %s: %s", self._job.id, words)
        try:
            self._log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} remote: {words}\n")
            self._log.flush()
        except (OSError, ValueError):  # the log closed under us: the agent's own log has it
            pass
