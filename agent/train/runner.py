"""Runs training jobs one at a time, each in its own process, and never loses one.

A crash or kill of the job process resumes it from its last checkpoint (a few times); an agent
stop checkpoints the job and its next start resumes it; speech can pause a GPU job. Progress
reaches MQTT as rate-limited events, the profile's retained state and the seed's status file.

A job whose profile's ``runOn.train`` sends it to another node runs there (agent/train/remote.py):
its ``Launch`` carries a ``remote`` start, whose ``JobProcess`` speaks the job process's protocol
(progress lines, a result line, an exit code), so everything above stays the one path; a lost
worker is a death of the job process, resumed from the last checkpoint the home holds.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from agent import lockfile
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.layout import Layout, StatusFiles
from agent.train.estimate import measure
from agent.train.jobs import ACTIVE, Job, JobStore, job_status, write_status
from agent.train.keep import remove_checkpoints, rotate_log
from agent.train.logs import attempt_header
from agent.train.process import job_reports, start_job_process
from agent.train.schedule import IdlePolicy
from agent.train.worker import context_document

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 2.0  # seconds between training.progress events
STOP_GRACE = 60.0  # seconds a job gets to checkpoint after SIGTERM
Intent = Literal["pause", "cancel", "shutdown"]
MEMORY_WAIT = "waiting for memory"  # how agent.memory's reasons to wait begin
# a job -> None when it may start, ("wait", why) to wait (its status says why), ("never", why) to fail it
Admit = Callable[[Job], tuple[Literal["wait", "never"], str] | None]


class JobProcess(Protocol):
    """What the runner needs of a job's process: ``subprocess.Popen``, or a job run by another node."""

    @property
    def pid(self) -> int | None: ...

    @property
    def stdout(self) -> Any: ...  # lines: the worker's JSON protocol (progress, result)

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


# the job, its Launch, its job-process document and its log -> the process that runs it elsewhere
RemoteStart = Callable[[Job, "Launch", dict[str, Any], IO[str]], JobProcess]


@dataclass(frozen=True)
class Launch:
    """Everything the job process needs, prepared by the caller (dataset, trainer, dirs); ``remote``
    when another node runs it (no GPU of this node is reserved then)."""

    trainer: str  # module:Class
    dataset_dir: Path
    output_dir: Path
    checkpoint_dir: Path
    need_vram_mb: int
    pause_hogs: bool
    keep_failed: int = 3  # checkpoint folders of failed jobs left to look into
    log_max_bytes: int = 10 * 1024 * 1024
    remote: RemoteStart | None = None


@dataclass
class _Running:
    job: Job
    process: JobProcess
    device: str
    resources: ExitStack
    launch: Launch
    started: float = field(default_factory=time.monotonic)
    first_step: int | None = None
    first_advance: tuple[float, int] | None = None  # (monotonic time, step) of the first report past first_step
    last_advance: tuple[float, int] | None = None  # and of the newest one: the pace is measured between them
    last_event: float = 0.0
    intent: Intent | None = None
    result: dict[str, Any] | None = None


class JobRunner:
    def __init__(
        self, jobs: JobStore, layout: Layout, events: EventBus, state: StateBoard, policy: IdlePolicy,
        arbiter: GpuArbiter, prepare: Any, max_restarts: int = 3, preempt_gpu_jobs: bool = True,
        admit: Admit | None = None,
    ) -> None:
        """``prepare(job) -> Launch`` exports the dataset and picks the trainer (it may raise);
        ``admit(job)`` says whether the job may start now as far as memory goes."""
        self._jobs = jobs
        self._layout = layout
        self._events = events
        self._state = state
        self._policy = policy
        self._arbiter = arbiter
        self._prepare = prepare
        self._max_restarts = max_restarts
        self._preempt = preempt_gpu_jobs
        self._admit = admit
        self._running: _Running | None = None
        self._followers: set[threading.Thread] = set()  # a follower outlives its job while it records the end
        self._lock = threading.Lock()
        self._tick_lock = threading.RLock()  # tick() one at a time (see tick)
        self._stopping = False
        self._holder: Any = None  # the open jobs.lock while this runner is the one that runs jobs

    # -- lifecycle -------------------------------------------------------------------------
    def recover(self) -> bool:
        """Become the home's one runner of jobs (an agent, or a training in the foreground), then
        a job that was running when the last runner stopped runs again from its checkpoint.
        False while another runner holds the home; ``tick`` tries again."""
        if self._holder is not None:
            return True
        handle = lockfile.hold(self._layout.jobs_lock)
        if handle is None:
            return False
        self._holder = handle
        for job in self._jobs.list(states=("running",), limit=1000):
            self._jobs.update(job, state="queued")
            log.info("job %s was running when the last runner stopped; it will resume", job.id)
        return True

    def release(self) -> None:
        if self._holder is not None:
            self._holder.close()
            self._holder = None

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            running = self._running
        if running is not None:
            self._signal_stop(running, "shutdown")
            try:
                running.process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                running.process.kill()
        # every follower, the stopped job's and one still recording how its job ended: its events must
        # leave before the broker's connection, its state before the job database closes
        with self._lock:
            followers = [f for f in self._followers if f is not threading.current_thread()]
        for follower in followers:
            follower.join(timeout=10)
        self.release()

    # -- requests ------------------------------------------------------------------------
    def enqueue(self, job: Job) -> None:
        self._emit(job, "training.queued", {"when": job.run_when})
        self._publish_state(job)

    def cancel(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        with self._lock:
            running = self._running if self._running and self._running.job.id == job_id else None
        if running is not None:
            self._signal_stop(running, "cancel")
            return job
        if job.state in ("queued", "paused"):
            job = self._jobs.update(job, state="cancelled", finished=time.time())
            self._emit(job, "training.cancelled", {})
            self._publish_state(job)
        return job

    def on_speech(self) -> None:
        """Speech wins over a GPU job when configured: checkpoint it and resume when idle again."""
        with self._lock:
            running = self._running
        if running is not None and self._preempt and running.device == "cuda" and running.intent is None:
            self._signal_stop(running, "pause")

    def running_remote(self) -> bool:
        """Whether the job that runs now runs on a worker node."""
        with self._lock:
            return self._running is not None and self._running.launch.remote is not None

    @property
    def running_job(self) -> Job | None:
        with self._lock:
            return self._running.job if self._running else None

    def running_info(self) -> dict[str, Any] | None:
        """The job that runs now, where (``cpu``/``cuda``) and as which process; None when none runs."""
        with self._lock:
            running = self._running
        if running is None:
            return None
        job = running.job
        return {"job": job.id, "profile": job.profile, "provider": job.provider, "speaker": job.speaker,
                "device": running.device, "pid": running.process.pid, "progress": job.progress}

    # -- the scheduler's tick ------------------------------------------------------------
    def tick(self) -> None:
        """One look at the queue. Ticks come from the scheduler's thread and from a submit's wake:
        one at a time, or two could pick (and tell of, or launch) the same job."""
        with self._tick_lock:
            with self._lock:
                if self._running is not None or self._stopping:
                    return
            if not self.recover():
                return  # a training runs in the foreground here: its jobs are its own until it ends
            job = self._next_job()
            if job is not None:
                self._launch(job)

    def _next_job(self) -> Job | None:
        candidates = sorted(self._jobs.list(states=("queued", "paused"), limit=1000), key=lambda j: j.created)
        for job in candidates:
            if job.state == "paused" and self._policy.quiet_for() < self._policy.quiet_seconds:
                continue  # preempted by speech: wait for quiet
            if job.run_when == "idle" and not self._policy.is_idle():
                self._update_waiting(job, self._policy.why_waiting())
                continue
            verdict = self._admit(job) if self._admit is not None else None
            if verdict is not None and verdict[0] == "never":  # it would be killed half-way: say so now
                self._finish(job, "failed", error=verdict[1], code="not_enough_memory")
                continue
            if verdict is not None:
                self._update_waiting(job, verdict[1])
                continue
            return job
        return None

    def _update_waiting(self, job: Job, reason: str) -> None:
        was = str(job.progress.get("waiting") or "")
        if reason.startswith(MEMORY_WAIT) and not was.startswith(MEMORY_WAIT):  # once, not at every figure's change
            self._emit(job, "training.waiting", {"reason": reason})
        if was != reason:
            job = self._jobs.update(job, progress={**job.progress, "waiting": reason})
            self._publish_state(job)

    def _launch(self, job: Job) -> None:
        try:
            launch = self._prepare(job)
        except Exception as exc:
            self._finish(job, "failed", error=f"cannot start: {exc}", code=getattr(exc, "code", None))
            return
        resources = ExitStack()
        device = "remote" if launch.remote is not None else \
            resources.enter_context(self._arbiter.reserve(launch.need_vram_mb, "training", launch.pause_hogs))
        log_path = self._status(job).log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._rotate(job, log_path, launch.log_max_bytes)
        log_file = resources.enter_context(open(log_path, "a", encoding="utf-8"))
        log_file.write(attempt_header(time.strftime('%Y-%m-%d %H:%M:%S'), job.id, job.attempts + 1, device))
        log_file.flush()
        document = {
            "trainer": launch.trainer, "profile": job.profile, "speaker": job.speaker, "params": job.params,
            "dataset_dir": str(launch.dataset_dir), "output_dir": str(launch.output_dir),
            "checkpoint_dir": str(launch.checkpoint_dir), "device": device,
            "ctx": context_document(self._layout.provider_context(job.profile)),
            "nice": 19 if device == "cpu" else 0,  # CPU jobs must not slow speech down
        }
        try:
            process = launch.remote(job, launch, document, log_file) if launch.remote is not None else \
                start_job_process(document, log_file)
        except Exception as exc:
            resources.close()
            self._finish(job, "failed", error=f"cannot start: {exc}", code=getattr(exc, "code", None))
            return
        resumed = job.attempts > 0 or job.state == "paused" or bool(job.progress.get("step"))
        job = self._jobs.update(job, state="running", started=job.started or time.time(),
                                progress={k: v for k, v in job.progress.items() if k != "waiting"})
        running = _Running(job, process, device, resources, launch)
        with self._lock:
            self._running = running
        self._emit(job, "training.resumed" if resumed else "training.started", {"device": device, "pid": process.pid})
        self._publish_state(job)
        # reads its reports and, at its exit, says so (``_on_exit``)
        follower = threading.Thread(target=self._follow, args=(running,), name=f"train-{job.id}", daemon=True)
        with self._lock:
            self._followers.add(follower)
        follower.start()

    # -- following the job process ---------------------------------------------------------
    def _follow(self, running: _Running) -> None:
        assert running.process.stdout is not None
        for message in job_reports(running.process.stdout):
            if message["type"] == "progress":
                self._on_progress(running, message)
            else:
                running.result = message
        code = running.process.wait()
        running.resources.close()
        with self._lock:
            self._running = None
        try:
            self._on_exit(running, code)
        finally:
            with self._lock:
                self._followers.discard(threading.current_thread())

    def _on_progress(self, running: _Running, message: dict[str, Any]) -> None:
        """Every report updates memory; the database, status file and MQTT hear of it at most
        every PROGRESS_INTERVAL (and at checkpoints), so a chatty trainer costs the agent nothing."""
        step, total = int(message.get("step", 0)), int(message.get("total", 0))
        now = time.monotonic()
        if running.first_step is None:
            running.first_step = step
        elif step > running.first_step and (running.last_advance is None or step > running.last_advance[1]):
            running.first_advance = running.first_advance or (now, step)
            running.last_advance = (now, step)
        eta, basis = self._eta(running, step, total)
        progress = {k: message.get(k) for k in ("stage", "step", "total", "best", "loss", "message")}
        if message.get("node"):  # the worker node that runs it
            progress["node"] = message["node"]
        progress["eta_seconds"] = None if eta is None else round(eta)
        progress["eta_basis"] = basis
        if running.job.progress.get("estimate_seconds") is not None:  # said before Start: kept for the time left
            progress["estimate_seconds"] = running.job.progress["estimate_seconds"]
        running.job = replace(running.job, progress=progress)
        checkpoint = bool(message.get("checkpoint"))
        if not (checkpoint or now - running.last_event >= PROGRESS_INTERVAL or step >= total):
            return
        running.job = self._jobs.update(running.job)
        write_status(self._status(running.job), job_status(running.job, eta))
        if checkpoint:
            self._emit(running.job, "training.checkpoint", {"step": step, "total": total})
        if now - running.last_event >= PROGRESS_INTERVAL or step >= total:
            running.last_event = now
            self._emit(running.job, "training.progress", progress)
            self._publish_state(running.job)

    @staticmethod
    def _eta(running: _Running, step: int, total: int) -> tuple[float | None, str]:
        """Time left and what it rests on: the pace of the steps done so far (after the first,
        which carries the setup), else the estimate made before the job started, less the time
        it has run."""
        if total and step >= total:
            return 0.0, "done"
        first, last = running.first_advance, running.last_advance
        if first is not None and last is not None and last[1] > first[1] and last[0] > first[0]:
            pace = (last[0] - first[0]) / (last[1] - first[1])
            return (total - step) * pace, f"measured on {last[1] - first[1]} steps of this job"
        estimate = running.job.progress.get("estimate_seconds")
        if isinstance(estimate, (int, float)):
            return max(0.0, float(estimate) - (time.monotonic() - running.started)), "the estimate made before it started"
        return None, "not known until a few steps are done"

    def _on_exit(self, running: _Running, code: int) -> None:
        job, result = running.job, running.result or {}
        # another node's pace is no estimate of this one's
        timing = None if running.launch.remote is not None else measure(running.device, running.started, running.first_advance,
                                                             running.last_advance, job.id)
        if timing is not None:  # the next estimate of this trainer rests on it
            job = self._jobs.update(job, timing=timing.as_dict())
        launch = running.launch
        if code == 0 and result.get("status") == "finished":
            self._finish(job, "finished", outputs=result.get("outputs", []), metrics=result.get("metrics", {}), launch=launch)
        elif code == 0 and result.get("status") == "refused":  # the dataset will not do: retrying cannot help
            self._finish(job, "failed", error=str(result.get("error")), launch=launch)
        elif code == 0 and result.get("status") == "failed":  # no worker would take it: said at once, not retried
            self._finish(job, "failed", error=str(result.get("error")), launch=launch, code=str(result.get("code") or "") or None)
        elif running.intent == "cancel":
            self._finish(job, "cancelled", launch=launch)
        elif running.intent in ("pause", "shutdown"):
            state = "paused" if running.intent == "pause" else "queued"
            job = self._jobs.update(job, state=state)
            reason = "speech has priority on the GPU" if running.intent == "pause" else "the agent is stopping; resumes on its next start"
            self._emit(job, "training.paused", {"reason": reason, "step": job.progress.get("step")})
            self._publish_state(job)
        elif job.attempts < self._max_restarts:
            lost = getattr(running.process, "lost", None)  # a worker node that went away (its code and words)
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            reason = f"{lost[1]}; resuming from its last checkpoint" if lost else \
                f"job process died ({how}); resuming from its last checkpoint"
            job = self._jobs.update(job, state="queued", attempts=job.attempts + 1)
            self._emit(job, "training.paused", {"reason": reason, "attempt": job.attempts,
                                                **({"code": lost[0]} if lost else {})})
            self._publish_state(job)
        else:
            self._finish(job, "failed", error=f"job process died {job.attempts + 1} times (last exit code {code}); see the log",
                         launch=launch)

    def _finish(self, job: Job, state: Literal["finished", "failed", "cancelled"], error: str | None = None,
                outputs: list[str] | None = None, metrics: dict[str, float] | None = None,
                launch: Launch | None = None, code: str | None = None) -> None:
        job = self._jobs.update(job, state=state, finished=time.time(), error=error, outputs=outputs or [])
        if launch is not None:
            self._tidy(job, launch)
        write_status(self._status(job), job_status(job, None))
        data: dict[str, Any] = {"outputs": job.outputs, "metrics": metrics or {}}
        if error:
            data["error"] = error
        if code:
            data["code"] = code
        self._emit(job, f"training.{state}", data)
        self._publish_state(job)

    # -- what training leaves on disk (train.keep) ------------------------------------------
    def _tidy(self, job: Job, launch: Launch) -> None:
        active = {j.id for j in self._jobs.list(profile=job.profile, states=ACTIVE, limit=1000)}
        ended = None if job.state == "failed" else launch.checkpoint_dir.name
        gone = remove_checkpoints(launch.checkpoint_dir.parent, ended, active, launch.keep_failed)
        if gone:
            self._emit(job, "training.pruned", {"checkpoints": gone, "reason": f"more than {launch.keep_failed} failed runs kept"})

    def _rotate(self, job: Job, log_path: Path, max_bytes: int) -> None:
        size = rotate_log(log_path, max_bytes)
        if size is not None:
            self._emit(job, "training.log_rotated", {"log": str(log_path), "bytes": size, "kept_as": log_path.name + ".1"})

    def _status(self, job: Job) -> StatusFiles:
        return self._layout.status_files(job.provider, job.speaker)

    def _signal_stop(self, running: _Running, intent: Intent) -> None:
        running.intent = intent
        try:
            running.process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def _emit(self, job: Job, name: str, data: dict[str, Any]) -> None:
        self._events.emit(job.profile, name, {"job": job.id, "provider": job.provider, "speaker": job.speaker, **data})

    def _publish_state(self, job: Job) -> None:
        summary = {"job": job.id, "provider": job.provider, "speaker": job.speaker, "state": job.state, **job.progress}
        self._state.update(job.profile, training=summary if job.state in ACTIVE else {**summary, "done": True})

