"""This node running other nodes' training jobs (``VOICE_AGENT_WORKER=true``): one at a time. A
job from a work topic is taken or declined at once on the network thread (``take``): declined
when one runs already (``busy``: the home publishes it again for another worker) or when this
node has no such trainer. A taken job runs on a thread of its own: its dataset and checkpoint are
fetched by hash from its home (agent/blobs/cache.py: verified before a file becomes one) and laid
out under ``out/work/train/<key>/``; the job process is the one the home's runner starts
(agent/train/process.py ``start_job_process``, agent/train/worker.py), with this node's trainer,
models and GPU. Its progress goes home a report a reply (at most every ``progress_s``, and every
checkpoint's with the checkpoint folder's files); at the end the trained files, or ``stopped``
after the checkpoint the stop made. Files that fit a reply (``inline_bytes`` together) ride in it;
larger ones (an RVC model, its checkpoints) are offered on this node's blob route
(agent/blobs/offers.py) and named by hash, for the home to fetch; they go when the home releases
them, when the job's next ones replace them, when another job starts, or ``OFFER_KEEP_S`` after
the job's end. The job stops (checkpointed) when its home asks, when its
home goes offline (its last will: nobody would take the result), and when this agent stops.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from agent.blobs.cache import BlobCache
from agent.blobs.offers import ChangedWhileRead, Offers
from agent.errors import ServiceError
from agent.layout import Layout
from agent.nodes.work import (MAX_INLINE_BYTES, Answer, BlobRef, FileData, Release, TrainProgress, TrainReply,
                              TrainWork, WorkError, read_stop, read_train_job)
from agent.requests import describe_validation_error
from agent.train.process import job_reports, start_job_process
from agent.train.worker import context_document
from providers.base import ProviderContext
from providers.spec import TrainerSpec

log = logging.getLogger(__name__)

Reply = Callable[[bytes], None]
Reserve = Callable[[int, Literal["training"], bool], AbstractContextManager[Literal["cpu", "cuda"]]]  # the GPU arbiter's: (MB, holder, pause hogs) -> device
StartProcess = Callable[[dict[str, Any], IO[str]], Any]
TAKEN_IDS = 1024
STOP_GRACE_S = 60.0  # a stopped trainer checkpoints within this, or is killed
KEEP_LOGS = 20  # the job logs of the last jobs run for others (out/work/train/logs)
OFFER_KEEP_S = 900.0  # a job's offered files wait this long after its end for its home to fetch them


@dataclass
class _Taken:
    job: TrainWork
    answer: Answer[TrainReply]
    stop_reason: str = ""
    process: Any = None
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self, reason: str) -> None:
        """Ask the trainer to checkpoint and stop (its process gets SIGTERM once it runs)."""
        with self.lock:
            if not self.stop_reason:
                self.stop_reason = reason
            process = self.process
        if process is not None:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                return
            timer = threading.Timer(STOP_GRACE_S, _kill_if_running, args=(process,))  # a trainer that will not stop
            timer.daemon = True
            timer.start()


class TrainWorker:
    def __init__(self, node: str, layout: Layout, blobs: BlobCache, token: Callable[[], str],
                 homes: Callable[[str], str | None], trainers: Callable[[], dict[str, TrainerSpec]], reserve: Reserve,
                 need_vram_mb: int = 0, pause_hogs: bool = False, busy: Callable[[], bool] = lambda: False,
                 home_online: Callable[[str], bool] = lambda node: True, alive_s: float = 1.0,
                 progress_s: float = 0.5, start: StartProcess = start_job_process, offers: Offers | None = None,
                 url: str = "", inline_bytes: int = MAX_INLINE_BYTES) -> None:
        """``homes``: a node's HTTP door as its state document says it (the token goes nowhere else);
        ``busy``: whether this node's own runner runs a job now; ``home_online``: the registry's word;
        ``offers`` and ``url``: where files too large for a reply (``inline_bytes``) wait for their
        home, this node's own blob route (none: such files are not sent)."""
        self.node = node
        self._layout = layout
        self._blobs = blobs
        self._token = token
        self._homes = homes
        self._trainers = trainers
        self._reserve = reserve
        self._need_vram_mb = need_vram_mb
        self._pause_hogs = pause_hogs
        self._busy = busy
        self._home_online = home_online
        self._alive_s = alive_s
        self._progress_s = progress_s
        self._start = start
        self._offers = offers if url else None
        self._url = url
        self._inline_bytes = min(inline_bytes, MAX_INLINE_BYTES)
        self._current: _Taken | None = None
        self._lock = threading.Lock()
        self._taken_ids: OrderedDict[str, None] = OrderedDict()
        self.taken = 0

    def start(self) -> None:
        """The folders of jobs an earlier run of this agent did not finish (killed, a power cut) go:
        their homes hold what matters, and resume the jobs on a worker."""
        folder = self._layout.work_dir / "train"
        for entry in folder.iterdir() if folder.is_dir() else []:
            if entry.is_dir() and entry.name != "logs":
                log.info("removing %s: a job for another node that an earlier run did not finish", entry)
                shutil.rmtree(entry, ignore_errors=True)
        if self._offers is not None:
            self._offers.start()

    def providers(self) -> list[str]:
        """The providers whose training this node runs for others."""
        return sorted(self._trainers())

    def take(self, provider: str, payload: bytes, reply: Reply,
             answers_home: Callable[[str], bool] = lambda home: True) -> None:
        """A job from the broker (the network thread: nothing here blocks)."""
        try:
            job = read_train_job(payload)
        except WorkError as exc:
            log.warning("ignored a training job for %s: %s", provider, exc)
            return
        if not job.sealed_by(self._token()):
            log.warning("ignored training job %s of node %s: not sealed with this household's token", job.id, job.home)
            return
        if not answers_home(job.home):
            log.warning("ignored training job %s of node %s: its response topic is not that node's", job.id, job.home)
            return
        answer = Answer(TrainReply, self.node, job.id, reply, self._token())
        with self._lock:
            if job.id in self._taken_ids:
                log.info("ignored training job %s of node %s: taken already", job.id, job.home)
                return
            if job.provider != provider or provider not in self._trainers():
                answer.say("declined", code="trainer_unavailable", message=f"{self.node} has no {job.provider} trainer")
                return
            if self._current is not None or self._busy():
                answer.say("declined", code="busy", message=f"{self.node} runs a training job already")
                return
            taken = _Taken(job, answer)
            self._current = taken
            self._taken_ids[job.id] = None
            while len(self._taken_ids) > TAKEN_IDS:
                self._taken_ids.popitem(last=False)
            self.taken += 1
            if self._offers is not None:
                self._offers.withdraw_others(job.id)  # what waits for a home is one job's files at most
            answer.say("accepted")  # before any word of the job's own thread
        log.info("training job %s of node %s taken (%s/%s, %d files%s)", job.id, job.home, job.provider, job.speaker,
                 len(job.dataset), f", resuming from step {job.step}" if job.checkpoint else "")
        threading.Thread(target=self._run, args=(taken,), name=f"train-for-{job.home}", daemon=True).start()

    def stop_asked(self, payload: bytes) -> None:
        """A home asks its job to stop, or releases the files it fetched (sealed; only the job's own
        home may stop it)."""
        try:
            stop = read_stop(payload)
        except WorkError as exc:
            log.warning("ignored a stop: %s", exc)
            return
        if isinstance(stop, Release):
            if not stop.sealed_by(self._token()) or self._offers is None:
                log.info("ignored a release of job %s's files from %s: not sealed, or nothing offered", stop.id, stop.home)
                return
            self._offers.withdraw(stop.id, set(stop.files) or None)
            return
        with self._lock:
            taken = self._current
        if not stop.sealed_by(self._token()) or taken is None or (taken.job.id, taken.job.home) != (stop.id, stop.home):
            log.info("ignored a stop of job %s from %s: not the job running here, or not sealed", stop.id, stop.home)
            return
        taken.stop(f"its home {stop.home} asked")

    def running(self) -> str | None:
        with self._lock:
            return None if self._current is None else self._current.job.id

    def stop(self, wait_s: float = STOP_GRACE_S) -> None:
        """The agent stops: the job checkpoints, its last checkpoint and ``stopped`` go home."""
        with self._lock:
            taken = self._current
        if taken is not None:
            taken.stop("its worker's agent is stopping")
            taken.done.wait(wait_s)

    # -- the job's own thread ---------------------------------------------------------------------
    def _run(self, taken: _Taken) -> None:
        ticker = threading.Thread(target=self._tick, args=(taken,), name="train-work-alive", daemon=True)
        ticker.start()
        key = hashlib.sha256(taken.job.id.encode()).hexdigest()[:16]
        folder = self._layout.work_dir / "train" / key
        try:
            last = self._train(taken, folder, key)
        except ServiceError as exc:
            last = self._reply(taken, "failed", code=exc.code, message=str(exc)[:2000])
        except Exception as exc:  # a bug must not take the worker down
            log.exception("training job %s of %s failed", taken.job.id, taken.job.home)
            last = self._reply(taken, "failed", code="worker_error", message=f"{type(exc).__name__}: {exc}"[:2000])
        shutil.rmtree(folder, ignore_errors=True)  # its home holds what matters: checkpoints, the voice
        if self._offers is not None and self._offers.held():
            timer = threading.Timer(OFFER_KEEP_S, self._offers.withdraw, args=(taken.job.id,))
            timer.daemon = True  # a home that never fetches them (gone for good) does not keep them here
            timer.start()
        with self._lock:
            self._current = None  # free for the next job before the last word: its home may send one at once
        taken.answer.send(last)
        taken.done.set()

    def _reply(self, taken: _Taken, kind: str, **fields: Any) -> TrainReply:
        return TrainReply.model_validate({"kind": kind, "node": self.node, "id": taken.job.id, **fields})

    def _tick(self, taken: _Taken) -> None:
        while not taken.done.wait(self._alive_s):
            if not self._home_online(taken.job.home):
                taken.stop(f"its home {taken.job.home} went offline")
            taken.answer.say("alive")

    def _train(self, taken: _Taken, folder: Path, key: str) -> TrainReply:
        """The job run to its end; its last word (sent once its folder is gone)."""
        job = taken.job
        trainer = self._trainers().get(job.provider)
        if trainer is None:
            raise ServiceError("trainer_unavailable", f"{self.node} has no {job.provider} trainer")
        try:
            params = trainer.params.model_validate(job.params)
        except ValidationError as exc:
            raise ServiceError("invalid_params", f"the job's params: {describe_validation_error(exc)}") from exc
        if self._homes(job.home) != job.home_url:
            raise ServiceError("untrusted_home", f"the job says node {job.home}'s files are at {job.home_url}, and its "
                               "state document does not: nothing fetched (the token goes only to a node's own door)")
        dataset, checkpoint, output = folder / "dataset", folder / "checkpoint", folder / "output"
        shutil.rmtree(folder, ignore_errors=True)
        for made in (dataset, checkpoint, output):
            made.mkdir(parents=True)
        for ref in job.dataset:
            _place(self._blobs.get(ref.sha256, job.home_url, self._token(), size=ref.size), dataset / ref.name)
        for ref in job.checkpoint:
            shutil.copyfile(self._blobs.get(ref.sha256, job.home_url, self._token(), size=ref.size), checkpoint / ref.name)
        ctx = ProviderContext(profile=job.profile, profile_dir=folder, voices_dirs=(folder, self._layout.household_voices),
                              data_dir=self._layout.models_dir, run_dir=self._layout.run_dir, home=self._layout.home,
                              samples_dir=folder / "samples")
        logs = self._layout.work_dir / "train" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        _prune_logs(logs)
        with self._reserve(self._need_vram_mb, "training", self._pause_hogs) as device, \
                open(logs / f"{key}.log", "a", encoding="utf-8") as log_file:
            log_file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} job {job.job} of {job.home} ({job.id}) on {device}\n")
            log_file.flush()
            document = {"trainer": trainer.target, "profile": job.profile, "speaker": job.speaker,
                        "params": params.model_dump(mode="json"), "dataset_dir": str(dataset), "output_dir": str(output),
                        "checkpoint_dir": str(checkpoint), "device": device, "ctx": context_document(ctx),
                        "nice": 19 if device == "cpu" else 0}
            with taken.lock:
                if taken.stop_reason:  # asked to stop while its files came: nothing ran, nothing to send
                    return self._reply(taken, "done", status="stopped", message=taken.stop_reason)
                taken.process = self._start(document, log_file)
            result = self._follow(taken, checkpoint)
            code = taken.process.wait()
        return self._finish(taken, result, code, output)

    def _follow(self, taken: _Taken, checkpoint: Path) -> dict[str, Any]:
        """The job process's lines: progress home (a checkpoint's with its files); its result."""
        result: dict[str, Any] = {}
        last_sent: float | None = None  # the first report goes at once
        for message in job_reports(taken.process.stdout):
            if message["type"] == "result":
                result = message
                continue
            progress = TrainProgress.from_report(message)
            now = time.monotonic()
            if progress.checkpoint:
                taken.answer.send(self._reply(taken, "progress", progress=progress, **self._checkpoint(taken, checkpoint)))
                last_sent = now
            elif last_sent is None or now - last_sent >= self._progress_s or progress.step >= progress.total:
                taken.answer.send(TrainReply(kind="progress", node=self.node, id=taken.job.id, progress=progress))
                last_sent = now
        return result

    def _finish(self, taken: _Taken, result: dict[str, Any], code: int, output: Path) -> TrainReply:
        status = result.get("status")
        if code == 0 and status == "finished":
            paths = []
            for name in result.get("outputs") or []:
                path = Path(str(name))
                if path.parent != output or not path.is_file():
                    raise ServiceError("worker_error", f"the trainer named {path.name!r} as a trained file outside its output folder")
                paths.append(path)
            metrics = {k: float(v) for k, v in (result.get("metrics") or {}).items() if isinstance(v, (int, float))}
            return self._reply(taken, "done", status="finished", metrics=metrics, **self._trained(taken, paths))
        if code == 0 and status == "refused":
            return self._reply(taken, "done", status="refused", message=str(result.get("error") or "")[:2000])
        if taken.stop_reason:
            return self._reply(taken, "done", status="stopped", message=taken.stop_reason)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise ServiceError("trainer_died", f"the job process on {self.node} ended ({how}) without a result")

    def _trained(self, taken: _Taken, paths: list[Path]) -> dict[str, Any]:
        """The trained files as a reply carries them: their bytes when they fit it, else offered."""
        if sum(path.stat().st_size for path in paths) <= self._inline_bytes:
            return {"files": [FileData.of(path.name, path.read_bytes()) for path in paths]}
        if self._offers is None:
            raise ServiceError("too_large", f"the trained files take more than {self._inline_bytes >> 20} MB: too much "
                               "for a reply, and this worker offers no files (its HTTP door and token are off)")
        return self._offered(taken, "trained", paths, move=True)

    def _checkpoint(self, taken: _Taken, folder: Path) -> dict[str, Any]:
        """A checkpoint's files as a reply carries them (nothing when they cannot be had: the home
        then resumes from the checkpoint before)."""
        files = _snapshot(folder, self._inline_bytes)
        if files is not None:
            return {"files": files}
        if self._offers is None:
            log.warning("a checkpoint of more than %d bytes does not fit a reply, and this worker offers no files: "
                        "not sent", self._inline_bytes)
            return {}
        why = "it changed at every read"
        for _ in range(5):
            try:
                before = _listing(folder)
                offered = self._offered(taken, "checkpoint", [folder / name for name in sorted(before)])
                if _listing(folder) == before:
                    return offered
            except (ChangedWhileRead, FileNotFoundError):
                pass  # the trainer's next checkpoint came meanwhile
            except OSError as exc:  # no room for the copy: the next checkpoint tries again
                why = str(exc)
                break
        log.warning("the checkpoint in %s not sent: %s", folder, why)
        return {}

    def _offered(self, taken: _Taken, kind: str, files: list[Path], move: bool = False) -> dict[str, Any]:
        assert self._offers is not None
        offered = self._offers.offer(taken.job.id, kind, files, move=move)
        return {"fetch": [BlobRef(sha256=o.sha256, size=o.size, name=o.name) for o in offered], "url": self._url}


def _kill_if_running(process: Any) -> None:
    if process.poll() is None:
        log.warning("a training job for another node did not stop within %.0f s of its SIGTERM: killed", STOP_GRACE_S)
        process.kill()


def _place(source: Path, target: Path) -> None:
    """A fetched file into the job's folder: a hard link (the cache may evict its own name meanwhile),
    else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for entry in folder.iterdir():
        if entry.name.startswith(".") or not entry.is_file():
            continue
        info = entry.stat()
        found[entry.name] = (info.st_size, info.st_mtime_ns)
    return found


def _snapshot(folder: Path, limit: int, tries: int = 5) -> list[FileData] | None:
    """The checkpoint folder's files as one checkpoint: read, then listed again; a file that changed
    meanwhile (the trainer's next checkpoint) means another read. None when they would not fit a
    reply (more than ``limit`` bytes); empty when they never held still (the home then resumes from
    the checkpoint before)."""
    for _ in range(tries):
        try:
            before = _listing(folder)
            if sum(size for size, _ in before.values()) > limit:
                return None
            files = [FileData.of(name, (folder / name).read_bytes()) for name in sorted(before)]
            if _listing(folder) == before:
                return files
        except (OSError, ValidationError):
            continue
    log.warning("the checkpoint in %s changed at every read: not sent", folder)
    return []


def _prune_logs(folder: Path) -> None:
    logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-KEEP_LOGS] if len(logs) > KEEP_LOGS else []:
        old.unlink(missing_ok=True)
