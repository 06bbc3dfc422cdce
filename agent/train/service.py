"""The train path's front: validates requests, prepares datasets, owns the scheduler.

APScheduler drives the runner's tick, the GPU state and the automatic-retraining check; jobs
themselves live in SQLite (``out/jobs.db``), so queued and paused jobs survive restarts.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from agent.config_store import ConfigStore
from agent.events import EventBus, Publish, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.mqtt.router import Command, RequestError, Router, describe_validation_error
from agent.mqtt.schema import Request
from agent.profiles import Profiles
from agent.record import export as exporter
from agent.record.readiness import kokoro as kokoro_readiness
from agent.record.readiness import rvc as rvc_readiness
from agent.record.service import RecordService
from agent.settings import AgentSettings
from agent.train.jobs import ACTIVE, Job, JobStore
from agent.train.registry import load_trainer, trainer_names, trainer_target
from agent.train.runner import JobRunner, Launch
from agent.train.schedule import IdlePolicy, parse_window

log = logging.getLogger(__name__)

OUTPUT_DIRS = {"kokoro": "kokoro-voicepacks", "rvc": "rvc-models"}


class TrainRequest(Request):
    provider: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="kokoro or rvc.")
    speaker: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    when: Literal["now", "idle"] = "idle"
    params: dict[str, Any] = Field(default_factory=dict)


class JobRequest(Request):
    job: str | None = Field(None, pattern=r"^[0-9]{14}-[0-9a-f]{6}$")


class TrainService:
    def __init__(
        self, settings: AgentSettings, profiles: Profiles, configs: ConfigStore, records: RecordService,
        events: EventBus, state: StateBoard, publish: Publish, arbiter: GpuArbiter, gpu_topic: str,
    ) -> None:
        self._settings = settings
        self._profiles = profiles
        self._configs = configs
        self._records = records
        self._publish = publish
        self._gpu = arbiter.info
        self._gpu_topic = gpu_topic
        self.jobs = JobStore(settings.home / "out" / "jobs.db")
        self.policy = IdlePolicy(parse_window(settings.idle_window), settings.idle_minutes * 60)
        self.hogs = arbiter.hogs
        self.runner = JobRunner(
            self.jobs, profiles, events, state, self.policy, arbiter, self._prepare,
            settings.max_train_restarts, settings.train_preempt_on_speech,
        )
        events.listen(self.policy.on_event)
        events.listen(self._on_event)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="train-cmd")
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
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        self.runner.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.hogs.resume_leftovers()
        self.jobs.close()

    def register(self, router: Router) -> None:
        router.register("train", Command(TrainRequest, lambda p, r: self._executor.submit(self.submit, p, r)))
        router.register("train.cancel", Command(JobRequest, lambda p, r: self._executor.submit(self.cancel, p, r)))
        router.register("train.status", Command(JobRequest, lambda p, r: self._executor.submit(self.status, p, r)))

    # -- requests ----------------------------------------------------------------------------
    def submit(self, profile: str, request: TrainRequest) -> dict[str, Any]:
        try:
            target = trainer_target(request.provider, self._settings.extra_trainers)
        except KeyError as exc:
            raise RequestError("unknown_trainer", str(exc.args[0])) from None
        trainer = load_trainer(target)
        try:
            params = trainer.params_model.model_validate(request.params).model_dump(mode="json")
        except ValidationError as exc:
            raise RequestError("invalid_params", describe_validation_error(exc)) from exc
        missing = [] if self._dataset_ready(profile, request.provider, request.speaker) else self._missing_data(profile, request.provider)
        if missing:
            raise RequestError("not_ready", f"not enough samples to train {request.provider}: {'; '.join(missing)}")
        for job in self.jobs.list(states=ACTIVE, profile=profile):
            if job.provider == request.provider and job.speaker == request.speaker:
                raise RequestError("duplicate", f"job {job.id} already trains {request.provider}/{request.speaker} ({job.state})")
        job = self.jobs.create(profile, request.provider, request.speaker, params, request.when)
        self.runner.enqueue(job)
        if request.when == "now":
            self._executor.submit(self.runner.tick)
        return {"id": request.id, "job": job.as_dict()}

    def cancel(self, profile: str, request: JobRequest) -> dict[str, Any]:
        job = self._own_job(profile, request.job)
        return {"id": request.id, "job": self.runner.cancel(job.id).as_dict()}

    def status(self, profile: str, request: JobRequest) -> dict[str, Any]:
        if request.job:
            return {"id": request.id, "job": self._own_job(profile, request.job).as_dict()}
        return {"id": request.id, "jobs": [j.as_dict() for j in self.jobs.list(profile=profile, limit=20)],
                "trainers": trainer_names(self._settings.extra_trainers)}

    def _own_job(self, profile: str, job_id: str | None) -> Job:
        job = self.jobs.get(job_id) if job_id else None
        if job is None or job.profile != profile:
            raise RequestError("unknown_job", f"no job {job_id!r} in profile {profile!r}")
        return job

    def _dataset(self, profile: str, provider: str, speaker: str) -> Path:
        voices = self._profiles.directory(profile) / "out" / "voices"
        return voices / exporter.TARGETS.get(provider, "rvc-reference") / speaker

    def _dataset_ready(self, profile: str, provider: str, speaker: str) -> bool:
        """A dataset folder the user filled (or an earlier export) is used as it is; the trainer
        checks it against its own minimums. Otherwise the samples must be ready to export."""
        return any(self._dataset(profile, provider, speaker).glob("*.wav"))

    def _missing_data(self, profile: str, provider: str) -> list[str]:
        samples = self._records.store(profile).list()
        threshold = self._configs.get(profile).record.threshold
        if provider == "rvc":
            return rvc_readiness(samples, threshold).missing
        if provider == "kokoro":
            return kokoro_readiness(samples).missing
        return []

    def check_auto_retrain(self, profiles: list[str] | None = None) -> list[Job]:
        """Queue an idle-time job for each profile whose new good samples reached the threshold."""
        queued = []
        for profile in profiles or self._profiles.names():
            auto = self._configs.get(profile).train.auto_retrain
            if not auto.enabled:
                continue
            history = [j for j in self.jobs.list(profile=profile, limit=1000) if j.provider == auto.provider]
            if any(j.state in ACTIVE for j in history):
                continue
            since = max((j.finished or 0 for j in history if j.state == "finished"), default=0.0)
            fresh = [s for s in self._records.store(profile).list() if s.created > since]
            if len(fresh) < auto.new_samples:
                continue
            request = TrainRequest(provider=auto.provider, speaker=auto.speaker, when="idle")
            try:
                result = self.submit(profile, request)
            except RequestError as exc:
                log.info("automatic retraining of %s/%s not queued: %s", profile, auto.provider, exc)
                continue
            queued.append(self.jobs.get(result["job"]["id"]))  # type: ignore[arg-type]
        return [j for j in queued if j is not None]

    # -- the runner's callbacks -----------------------------------------------------------
    def _prepare(self, job: Job) -> Launch:
        profile_dir = self._profiles.directory(job.profile)
        voices = profile_dir / "out" / "voices"
        dataset = self._dataset(job.profile, job.provider, job.speaker)
        if job.provider in ("kokoro", "rvc") and not self._dataset_ready(job.profile, job.provider, job.speaker):
            store = self._records.store(job.profile)
            exporter.export(store, profile_dir, job.provider, job.speaker,
                            exporter.choose(store, job.provider, None, None, None))
        return Launch(
            trainer=trainer_target(job.provider, self._settings.extra_trainers),
            dataset_dir=dataset,
            output_dir=voices / OUTPUT_DIRS.get(job.provider, f"{job.provider}-models") / job.speaker,
            checkpoint_dir=profile_dir / "out" / "training" / job.id,
            need_vram_mb=self._settings.train_vram_mb,
            pause_hogs=self._settings.pause_gpu_hogs_for_training,
        )

    def _on_event(self, profile: str, name: str, data: dict[str, Any]) -> None:
        if name == "speak.started":
            self.runner.on_speech()
        elif name == "sample.captured" and self._configs.get(profile).train.auto_retrain.enabled:
            self._executor.submit(self.check_auto_retrain, [profile])

    def publish_gpu_state(self) -> None:
        self._publish(self._gpu_topic, json.dumps(self._gpu.report().as_dict()), 1, True)

