"""A training job run to its end by this process, when no agent runs jobs in the home: the same
service, runner, job process, log and status file as the agent's, just without its scheduler.
A job of the same provider and speaker left queued or paused (stopped by Ctrl-C) resumes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config.store import ConfigStore
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.gpu.status import NvmlInfo
from agent.layout import Layout
from agent.record.service import RecordService
from agent.settings import AgentSettings
from agent.train.jobs import ACTIVE, Job
from agent.train.requests import TrainRequest
from agent.train.service import TrainService

FINAL = ("training.finished", "training.failed", "training.cancelled")
EventSink = Callable[[str, dict[str, Any]], None]


class RunnerBusy(Exception):
    """Another runner (the agent) holds the home's jobs: submit to it instead."""


def train_in_foreground(settings: AgentSettings, profile: str, request: TrainRequest, dataset: Path | None,
                        on_event: EventSink) -> Job:
    """Run the job and return it as it ended: finished, failed, cancelled, or queued again after
    Ctrl-C (checkpointed). ``on_event`` hears the job's events as they happen."""
    layout = Layout(settings.home)
    events, state = EventBus(), StateBoard()
    configs = ConfigStore(layout, events)
    records = RecordService(layout, configs, events, state, 1)
    arbiter = GpuArbiter(NvmlInfo(), HogPauser(settings.gpu_hogs, layout.paused_gpu_users), lambda name, data: None)
    service = TrainService(settings, layout, configs, records, events, state, arbiter)
    try:
        if not service.runner.recover():
            raise RunnerBusy()
        job = _resumable(service, profile, request) or service.jobs.get(service.submit(profile, request, dataset)["job"]["id"])
        assert job is not None
        ended = threading.Event()

        def listen(event_profile: str, name: str, data: dict[str, Any], when: float) -> None:
            if data.get("job") == job.id:
                on_event(name, data)
                if name in FINAL:
                    ended.set()

        events.listen(listen)
        try:
            service.runner.tick()
            while not ended.wait(0.5):
                if service.runner.running_job is None:
                    service.runner.tick()  # a crash is retried from its checkpoint, as in the agent
        except KeyboardInterrupt:
            service.runner.stop()  # checkpoint; the job waits, queued, for the same command again
        found = service.jobs.get(job.id)
        return found if found is not None else job
    finally:
        service.stop()
        records.stop()


def _resumable(service: TrainService, profile: str, request: TrainRequest) -> Job | None:
    """A job an earlier foreground run left (idle-time jobs are the agent's: submit refuses them)."""
    for job in service.jobs.list(states=ACTIVE, profile=profile):
        if job.provider == request.provider and job.speaker == request.speaker and job.run_when == "now":
            return job
    return None
