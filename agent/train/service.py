"""The train path's front: validates requests, prepares datasets, owns the scheduler.

APScheduler drives the runner's tick, the GPU state and the automatic-retraining check; jobs
themselves live in SQLite (``out/jobs.db``), so queued and paused jobs survive restarts. What a
provider trains with, and where its voice goes, is in its spec (the registry).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal

from pydantic import ValidationError

from agent.config.store import ConfigStore
from agent import memory as memory_state
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.layout import Layout
from agent.record import export as exporter
from agent.record.readiness import readiness
from agent.record.service import RecordService
from agent.requests import describe_validation_error, validation_problems
from agent.settings import AgentSettings
from agent.train.jobs import ACTIVE, Job, JobStore
from agent.train.registry import trainer_for, trainers
from agent.train.logs import job_log
from agent.train.plan import dataset_summary, job_estimate, trainer_readiness
from agent.train.requests import JobRequest, LogsRequest, PlanRequest, TrainRequest
from agent.nodes.placement import Place
from agent.train.remote import RemoteTraining
from agent.train.runner import JobRunner, Launch, RemoteStart
from agent.train.schedule import IdlePolicy, parse_window
from agent.work import BoundedExecutor
from providers import registry
from providers.spec import TrainerSpec

log = logging.getLogger(__name__)

RETRY_FIRST = 3600.0  # seconds automatic retraining waits after a failed job; doubled per failure in a row
RETRY_MAX = 86400.0


class TrainService:
    def __init__(
        self, settings: AgentSettings, layout: Layout, configs: ConfigStore, records: RecordService,
        events: EventBus, state: StateBoard, arbiter: GpuArbiter,
        memory: Callable[[], memory_state.MemoryReport] = memory_state.report,
        remote: RemoteTraining | None = None,
    ) -> None:
        """``memory()`` says what the agent holds and what a job may take (a test passes its own);
        ``remote``: where a profile's ``runOn.train`` may send a job (None: every job runs here)."""
        self.remote = remote
        # the job this node runs for another node, if any (the core plugs in its worker's)
        self.others_running: Callable[[], str | None] = lambda: None
        self._settings = settings
        self._layout = layout
        self._configs = configs
        self._records = records
        self._state = state
        self._gpu = arbiter.info
        self._memory = memory
        self.jobs = JobStore(layout.jobs_db)
        self.policy = IdlePolicy(parse_window(settings.idle_window), settings.idle_minutes * 60)
        self.hogs = arbiter.hogs
        self.runner = JobRunner(
            self.jobs, layout, events, state, self.policy, arbiter, self._prepare,
            settings.max_train_restarts, settings.train_preempt_on_speech, self._admit,
        )
        events.listen(lambda profile, name, data, when: self.policy.on_event(profile, name, data))
        events.listen(self._on_event)
        self._executor = BoundedExecutor("train", 1, settings.command_queue_depth)
        self._scheduler: Any = None

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every tick at INFO
        self.hogs.resume_leftovers()
        self.runner.recover()
        self._scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        self._scheduler.add_job(self.runner.tick, "interval", seconds=2, id="train-tick")
        self._scheduler.add_job(self.publish_gpu_state, "interval", seconds=60, id="gpu-state")
        self._scheduler.add_job(self.check_auto_retrain, "interval", minutes=10, id="auto-retrain")
        self._scheduler.start()
        self.publish_gpu_state()

    def stop(self) -> None:
        """Idempotent: a failed start stops the agent, and its stop may run again."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        self.runner.stop()
        self._executor.shutdown(wait=False)
        self.hogs.resume_leftovers()
        self.jobs.close()

    def stop_remote(self) -> None:
        """Before the node connection closes: a job running on a worker checkpoints there, and its
        checkpoint comes home (the job resumes on the next start, as a local one does)."""
        if self.runner.running_remote():
            self.runner.stop()

    # -- requests: each runs on the service's own thread ----------------------------------------
    def submit_later(self, profile: str, request: TrainRequest) -> Future[dict[str, Any]]:
        return self._executor.submit(self.submit, profile, request)

    def cancel_later(self, profile: str, request: JobRequest) -> Future[dict[str, Any]]:
        return self._executor.submit(self.cancel, profile, request)

    def status_later(self, profile: str, request: JobRequest) -> Future[dict[str, Any]]:
        return self._executor.submit(self.status, profile, request)

    def trainers_later(self, profile: str, request: Any) -> Future[dict[str, Any]]:
        return self._executor.submit(self.trainers, profile, request)

    def logs_later(self, profile: str, request: LogsRequest) -> Future[dict[str, Any]]:
        return self._executor.submit(self.logs, profile, request)

    def plan_later(self, profile: str, request: PlanRequest) -> Future[dict[str, Any]]:
        return self._executor.submit(self.plan, profile, request)

    def submit(self, profile: str, request: TrainRequest, dataset: Path | None = None) -> dict[str, Any]:
        """Queue a job; ``dataset`` (the CLI's --dataset) trains on that folder as it is."""
        try:
            trainer = trainer_for(request.provider, self._settings.extra_trainers)
        except KeyError as exc:
            raise ServiceError("unknown_trainer", str(exc.args[0])) from None
        try:
            validated = trainer.params.model_validate(request.params)
        except ValidationError as exc:
            raise ServiceError("invalid_params", describe_validation_error(exc),
                               {"problems": validation_problems(exc, "params")}) from exc
        params = validated.model_dump(mode="json")
        folder = dataset or self._dataset(profile, request.provider, request.speaker)
        about = {"provider": request.provider, "speaker": request.speaker, "dataset": str(folder)}
        if dataset is not None and not dataset.is_dir():
            raise ServiceError("not_ready", f"no dataset at {dataset}", {**about, "missing": []})
        if dataset is not None or self._dataset_ready(profile, request.provider, request.speaker):
            problems = trainer.check(folder, validated) if trainer.check is not None else []  # trained on as it is
            if problems:
                raise ServiceError("not_ready", "; ".join(problems), {**about, "problems_found": problems})
        else:
            missing = self._missing_data(profile, request.provider)
            if missing:  # the doors add how to get more: the page names its buttons, the CLI its commands
                raise ServiceError("not_ready", f"not enough samples to train {request.provider}: {'; '.join(missing)}",
                                   {**about, "missing": missing})
        for job in self.jobs.list(states=ACTIVE, profile=profile):
            if job.provider == request.provider and job.speaker == request.speaker:
                raise ServiceError("duplicate", f"job {job.id} already trains {request.provider}/{request.speaker} ({job.state})",
                                   {"job": job.id, "state": job.state, **about})
        queued = self.jobs.count(states=("queued",))
        if queued >= self._settings.max_queued_jobs:  # each may run for hours: a flood must not queue days of work
            raise ServiceError("busy", f"{queued} training jobs are already queued (at most "
                                       f"{self._settings.max_queued_jobs}); cancel one or wait for them",
                               {"queued": queued, "limit": self._settings.max_queued_jobs})
        # a job another node may run is that node's to judge (its worker runs its trainer in its own memory)
        memory = None if self._configs.get(profile).run_on.train != "local" else self._memory_check(trainer, validated, about)
        estimate = job_estimate(trainer, validated, self.jobs.last_timing(request.provider))
        if request.check:
            return {"id": request.id, "check": "ok", "estimate": estimate.as_dict(), "memory": memory}
        job = self.jobs.create(profile, request.provider, request.speaker, params, request.when,
                               str(dataset) if dataset is not None else None)
        if estimate.seconds is not None:  # the time left says it until the job's own steps can
            job = self.jobs.update(job, progress={"estimate_seconds": round(estimate.seconds)})
        self.runner.enqueue(job)
        if request.when == "now":
            self._soon(self.runner.tick)
        return {"id": request.id, "job": job.as_dict()}

    def _memory_check(self, trainer: TrainerSpec, params: Any, about: dict[str, Any]) -> dict[str, Any] | None:
        """Refuse a job that could never have the memory it needs here (``not_enough_memory``);
        one that fits, or will once memory is freed, is told what it needs and what there is."""
        need = trainer.memory_mb(params) if trainer.memory_mb is not None else None
        if not need or not self._settings.train_memory_check:
            return None
        found = self._memory()
        verdict, why = memory_state.judge(need, found)
        figures = {"need_mb": need, "fits_now": verdict == "fits", "words": why, **found.as_dict()}
        if verdict == "never":
            raise ServiceError("not_enough_memory", f"cannot train {about['provider']} here: {why}",
                               {**about, **figures})
        return figures

    def _admit(self, job: Job) -> tuple[Literal["wait", "never"], str] | None:
        """The runner asks before it starts a job: does its memory fit now (the household's other
        programs may have taken what was free when it was queued)? And is this node free of another
        node's job (a worker trains one job at a time, its own or another's)?"""
        elsewhere = self.others_running()
        if elsewhere is not None and self._remote_place(job) is None:
            return "wait", f"this node runs another node's training job ({elsewhere}); it starts after it"
        trainer = trainers(self._settings.extra_trainers).get(job.provider)
        if trainer is None or trainer.memory_mb is None or not self._settings.train_memory_check:
            return None
        if self._remote_place(job) is not None:
            return None  # the worker's memory, not this node's
        try:
            need = trainer.memory_mb(trainer.params.model_validate(job.params))
        except ValidationError:
            return None  # params of an older trainer version: the job's own start says what is wrong
        if not need:
            return None
        verdict, why = memory_state.judge(need, self._memory())
        if verdict == "fits":
            return None
        return verdict, why if verdict == "wait" else f"not started: {why}"

    def cancel(self, profile: str, request: JobRequest) -> dict[str, Any]:
        job = self._own_job(profile, request.job)
        return {"id": request.id, "job": self.runner.cancel(job.id).as_dict()}

    def status(self, profile: str, request: JobRequest) -> dict[str, Any]:
        if request.job:
            return {"id": request.id, "job": self._described(self._own_job(profile, request.job))}
        return {"id": request.id, "jobs": [self._described(j) for j in self.jobs.list(profile=profile, limit=20)],
                "trainers": sorted(trainers(self._settings.extra_trainers))}

    def plan(self, profile: str, request: PlanRequest) -> dict[str, Any]:
        """Before Start: the samples, each trainer's readiness, and how long this job would take
        here (estimate.py says where that comes from)."""
        found = trainers(self._settings.extra_trainers)
        trainer = found.get(request.provider)
        if trainer is None:
            raise ServiceError("unknown_trainer", f"no trainer for {request.provider!r}; known: {', '.join(sorted(found))}")
        try:
            validated = trainer.params.model_validate(request.params)
        except ValidationError as exc:
            raise ServiceError("invalid_params", describe_validation_error(exc),
                               {"problems": validation_problems(exc, "params")}) from exc
        samples = self._records.store(profile).list()
        threshold = self._configs.get(profile).record.threshold
        rules = {name: readiness(name, samples, threshold) for name in found if name in registry.NAMES
                 and registry.spec(name).dataset is not None}
        folders = {name: sum(1 for _ in self._dataset(profile, name, request.speaker).glob("*.wav")) for name in found}
        estimate = job_estimate(trainer, validated, self.jobs.last_timing(request.provider))
        return {"id": request.id, "provider": request.provider, "speaker": request.speaker,
                "dataset": dataset_summary(samples), "trainers": trainer_readiness(found, rules, folders),
                "estimate": estimate.as_dict()}

    def voice_of(self, profile: str, job_id: str) -> dict[str, Any]:
        """The voice.json changes that make a finished job's voice the profile's (what Listen
        tries for one request, and what choosing it sets through config.set)."""
        job = self._own_job(profile, job_id)
        changes = self._voice_changes(job)
        if job.state != "finished":
            raise ServiceError("not_ready", f"job {job.id} has not finished ({job.state})", {"job": job.id, "state": job.state})
        if not changes:
            raise ServiceError("not_ready", f"job {job.id} made no voice the profile can speak with", {"job": job.id})
        return changes

    def _voice_changes(self, job: Job) -> dict[str, Any]:
        trainer = trainers(self._settings.extra_trainers).get(job.provider)
        if trainer is None or trainer.use is None or job.state != "finished" or not job.outputs:
            return {}
        return trainer.use([Path(p) for p in job.outputs], job.speaker, trainer.params.model_validate(job.params))

    def _described(self, job: Job) -> dict[str, Any]:
        """A job as the doors show it, with ``voice``: the changes that would make its voice the profile's."""
        try:
            voice = self._voice_changes(job)
        except (ValidationError, KeyError) as exc:  # params of an older trainer version: it is shown, not chosen
            log.info("job %s: no voice to choose (%s)", job.id, exc)
            voice = {}
        return {**job.as_dict(), "voice": voice}

    def trainers(self, profile: str, request: Any) -> dict[str, Any]:
        """Each trainer's parameters as JSON schema (ranges, defaults, descriptions): what a form
        for a train request is made from."""
        found = trainers(self._settings.extra_trainers)
        return {"id": request.id, "trainers": {
            name: {"params": spec.params.model_json_schema(by_alias=True), "outputs": spec.outputs}
            for name, spec in sorted(found.items())
        }}

    def logs(self, profile: str, request: LogsRequest) -> dict[str, Any]:
        """The last lines the job's process wrote (its attempts' sections of the speaker's log)."""
        job = self._own_job(profile, request.job)
        path = self._layout.status_files(job.provider, job.speaker).log_path
        return {"id": request.id, "job": job.id, "log": str(path), "lines": job_log(path, job.id, request.lines)}

    def _own_job(self, profile: str, job_id: str | None) -> Job:
        job = self.jobs.get(job_id) if job_id else None
        if job is None or job.profile != profile:
            raise ServiceError("unknown_job", f"no job {job_id!r} in profile {profile!r}")
        return job

    # -- datasets ------------------------------------------------------------------------------
    def _dataset(self, profile: str, provider: str, speaker: str) -> Path:
        dataset = registry.spec(provider).dataset if provider in registry.NAMES else None
        folder = dataset.folder if dataset is not None else f"{provider}-datasets"
        return self._layout.voice_folder(profile, folder, speaker)

    def _dataset_ready(self, profile: str, provider: str, speaker: str) -> bool:
        """A dataset folder the user filled (or an earlier export) is used as it is; the trainer
        checks it against its own minimums. Otherwise the samples must be ready to export."""
        return any(self._dataset(profile, provider, speaker).glob("*.wav"))

    def _missing_data(self, profile: str, provider: str) -> list[str]:
        if provider not in registry.NAMES:
            return []  # a plugin trainer: it judges its dataset itself
        samples = self._records.store(profile).list()
        return readiness(provider, samples, self._configs.get(profile).record.threshold).missing

    def check_auto_retrain(self, profiles: list[str] | None = None) -> list[Job]:
        """Queue an idle-time job for each profile whose new good samples reached the threshold.
        After a failed job it waits (an hour, doubling with each failure in a row, at most a day)
        and for as many new samples again: a job that cannot succeed is not queued forever."""
        queued = []
        for profile in profiles or self._layout.names():
            auto = self._configs.get(profile).train.auto_retrain
            if not auto.enabled:
                continue
            history = [j for j in self.jobs.list(profile=profile, limit=1000) if j.provider == auto.provider]
            if any(j.state in ACTIVE for j in history):
                continue
            since = max((j.finished or 0 for j in history if j.state == "finished"), default=0.0)
            failed = [j for j in history if j.state == "failed" and (j.finished or 0) > since]
            if failed:
                last = max(j.finished or 0.0 for j in failed)  # each has finished: filtered above
                wait = min(RETRY_FIRST * 2 ** (len(failed) - 1), RETRY_MAX)
                if time.time() - last < wait:
                    log.info("automatic retraining of %s/%s waits %.0f s more after %d failed job(s)",
                             profile, auto.provider, wait - (time.time() - last), len(failed))
                    continue
                since = last
            try:
                fresh = [s for s in self._records.store(profile).list() if s.created > since]
            except ServiceError as exc:  # its record path is down: the other profiles are checked all the same
                log.info("automatic retraining of %s/%s not checked: %s", profile, auto.provider, exc)
                continue
            if len(fresh) < auto.new_samples:
                continue
            request = TrainRequest(provider=auto.provider, speaker=auto.speaker, when="idle")
            try:
                result = self.submit(profile, request)
            except ServiceError as exc:
                log.info("automatic retraining of %s/%s not queued: %s", profile, auto.provider, exc)
                continue
            queued.append(self.jobs.get(result["job"]["id"]))
        return [j for j in queued if j is not None]

    # -- the runner's callbacks -----------------------------------------------------------
    def _prepare(self, job: Job) -> Launch:
        trainer = trainer_for(job.provider, self._settings.extra_trainers)
        keep = self._configs.get(job.profile).train.keep
        remote = self._remote_start(job)
        dataset = Path(job.dataset) if job.dataset else self._dataset(job.profile, job.provider, job.speaker)
        if job.dataset is None and job.provider in registry.NAMES and not self._dataset_ready(job.profile, job.provider, job.speaker):
            store = self._records.store(job.profile)
            exporter.export(store, dataset, job.provider, exporter.choose(store, job.provider, None, None, None))
        return Launch(
            trainer=trainer.target,
            dataset_dir=dataset,
            output_dir=self._layout.voice_folder(job.profile, trainer.outputs, job.speaker),
            checkpoint_dir=self._layout.training_dir(job.profile, job.id),
            need_vram_mb=self._settings.train_vram_mb,
            pause_hogs=self._settings.pause_gpu_hogs_for_training,
            keep_failed=keep.failed_runs,
            log_max_bytes=int(keep.log_max_mb * 1024 * 1024),
            remote=remote,
        )

    def _remote_start(self, job: Job) -> RemoteStart | None:
        """Where the profile's ``runOn.train`` sends the job now: None here; a named node that cannot
        take it is ``no_worker`` (the job fails, saying why, rather than wait for ever)."""
        where = self._remote_place(job)
        if where is None:
            return None
        if where.code:
            raise ServiceError(where.code, where.reason)
        assert self.remote is not None
        return self.remote.starter(where)

    def _remote_place(self, job: Job) -> Place | None:
        """The worker the job goes to now, or a refusal (``code``); None: here."""
        run_on = self._configs.get(job.profile).run_on.train
        if run_on == "local" or self.remote is None or job.dataset is not None:  # --dataset: a folder of this machine's
            return None
        trainer = trainers(self._settings.extra_trainers).get(job.provider)
        if trainer is None or not trainer.remote:
            log.info("job %s (%s) trains here whatever runOn.train says: its trainer runs only where its profile lives",
                     job.id, job.provider)
            return None
        where = self.remote.place(run_on, job.provider)
        return where if where.node is not None or where.code else None

    def _on_event(self, profile: str, name: str, data: dict[str, Any], when: float) -> None:
        if name == "speak.started":
            self.runner.on_speech()
        elif name == "sample.captured" and self._configs.get(profile).train.auto_retrain.enabled:
            self._soon(self.check_auto_retrain, [profile])

    def _soon(self, work: Any, *args: Any) -> None:
        """Work of the service's own, not a request: when the queue is full the scheduler's next
        tick (every 2 s) or check (every 10 min) does it anyway."""
        try:
            self._executor.submit(work, *args)
        except ServiceError:
            pass

    def publish_gpu_state(self) -> None:
        """The GPUs, and the agent's memory beside them (its process tree, the limit, what is available)."""
        self._state.replace("gpu", {**self._gpu.report().as_dict(), "memory": self._memory().as_dict()})
