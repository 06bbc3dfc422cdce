"""The one table of commands: name -> request model and the service call that answers it.

Every door reaches the services through it: the MQTT router dispatches ``<base>/<profile>/
request/<name>`` by it, the CLI runs its local commands from it, and the HTTP and Wyoming edges
call the same entries. A handler returns its data, or a ``Future`` of it for long work; it
reports a refusal by raising ``ServiceError``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError, create_model

from agent.access import GUARDED, check_command, check_config_change, check_paths
from agent.config.model import VoiceConfig
from agent.errors import ServiceError
from agent.record.requests import (DeleteRequest, ExportRequest, ListRequest, PromptsRequest, RecordRequest,
                                   ShowRequest)
from agent.requests import ConfigSetRequest, EmptyRequest, Request, describe_validation_error, validation_problems
from agent.speak.requests import SpeakRequest
from agent.speak.service import AudioOut
from agent.train.registry import trainers
from agent.train.requests import JobRequest, LogsRequest, PlanRequest, TrainRequest
from agent.voices.requests import CatalogRequest, DownloadRequest, ImportRequest, VoicesRequest
from agent.work import Hold
from providers import registry
from providers.common.names import is_plain_name

if TYPE_CHECKING:
    from agent.core import Core
    from agent.record.samples import SampleService
    from agent.record.service import RecordService

Result = dict[str, Any] | Future[dict[str, Any]]
Handler = Callable[[str, Any, AudioOut], Result]  # (profile, validated request, where audio goes)


@dataclass(frozen=True)
class Reservation:
    """Room for an audio command's body, made before the body is read (HTTP): ``hold`` keeps its
    bytes in the service's budget while it arrives (``grow`` it for a body without a length);
    ``run`` starts the command, whose job takes the bytes over. Whoever reads the body releases
    ``hold`` in any case: once taken over, that gives back nothing."""

    hold: Hold
    run: Handler


Reserver = Callable[[str, int], Reservation]  # (profile, bytes announced) -> room, or ServiceError


@dataclass(frozen=True)
class Command:
    model: type[Request]
    run: Handler
    reserve: Reserver | None = None  # takes a recording (raw audio allowed, up to max_audio_bytes)

    @property
    def audio_in(self) -> bool:
        return self.reserve is not None


def find(commands: dict[str, Command], name: str) -> Command:
    command = commands.get(name)
    if command is None:
        raise ServiceError("unknown_command", f"unknown command {name!r}; known: {', '.join(sorted(commands))}")
    return command


def check_profile(profile: str, exists: Callable[[str], bool]) -> None:
    if not is_plain_name(profile):
        raise ServiceError("invalid_profile", f"profile name {profile!r} is not a plain identifier")
    if not exists(profile):
        raise ServiceError("unknown_profile", f"no profile {profile!r} (profiles are directories under profiles/)")


def reserve(commands: dict[str, Command], exists: Callable[[str], bool], profile: str, name: str,
            size: int) -> Reservation:
    """Before an audio command's body is read: the refusals that need no body (the command, the
    profile, access, a switched-off record path), then room for ``size`` bytes, or ``busy``."""
    command = find(commands, name)
    check_profile(profile, exists)
    if command.reserve is None:
        raise ServiceError("invalid_payload", f"{name} takes no recording")
    return command.reserve(profile, size)


def validate(command: Command, document: dict[str, Any]) -> Request:
    try:
        return command.model.model_validate(document)
    except ValidationError as exc:
        problems = {"problems": validation_problems(exc)}
        raise ServiceError("invalid_payload", describe_validation_error(exc), problems) from exc


def record_commands(records: RecordService, samples: SampleService) -> dict[str, Command]:
    """The record path's commands: the agent has them, and so has the CLI, on the disk alone."""
    def record(profile: str, size: int) -> Reservation:
        hold = records.reserve(profile, size)
        return Reservation(hold, lambda p, r, out: records.submit(p, r, hold))

    def enroll(profile: str, size: int) -> Reservation:
        hold = records.reserve(profile, size, enroll=True)
        return Reservation(hold, lambda p, r, out: records.enroll(p, r, hold))

    return {
        "record": Command(RecordRequest, lambda p, r, out: records.submit(p, r), reserve=record),
        "speaker.enroll": Command(RecordRequest, lambda p, r, out: records.enroll(p, r), reserve=enroll),
        "record.prompts": Command(PromptsRequest, lambda p, r, out: samples.prompts(p, r)),
        "samples.list": Command(ListRequest, lambda p, r, out: samples.list(p, r)),
        "samples.show": Command(ShowRequest, lambda p, r, out: samples.show(p, r)),
        "samples.delete": Command(DeleteRequest, lambda p, r, out: samples.delete(p, r)),
        "samples.export": Command(ExportRequest, lambda p, r, out: samples.export(p, r)),
        "samples.readiness": Command(EmptyRequest, lambda p, r, out: samples.readiness(p, r)),
        "samples.report": Command(EmptyRequest, lambda p, r, out: samples.report(p, r)),
    }


def command_table(core: Core) -> dict[str, Command]:
    table: dict[str, Command] = {
        "speak": Command(SpeakRequest, lambda p, r, out: core.speak_to(p, r, out)),
        "voices": Command(VoicesRequest, lambda p, r, out: core.voices(p, r)),
        "voices.download": Command(DownloadRequest, lambda p, r, out: core.downloads.download(p, r)),
        "voices.catalog": Command(CatalogRequest, lambda p, r, out: core.downloads.refresh_catalog(p, r)),
        "voices.import": Command(ImportRequest, lambda p, r, out: core.import_voices(p, r)),
        "config": Command(EmptyRequest, lambda p, r, out: core.config(p, r)),
        "config.set": Command(ConfigSetRequest, lambda p, r, out: core.set_config(p, r)),
        "config.schema": Command(EmptyRequest, lambda p, r, out: core.config_schema(p, r)),
        **record_commands(core.records, core.samples),
        "train": Command(TrainRequest, lambda p, r, out: core.train.submit_later(p, r)),
        "train.cancel": Command(JobRequest, lambda p, r, out: core.train.cancel_later(p, r)),
        "train.status": Command(JobRequest, lambda p, r, out: core.train.status_later(p, r)),
        "train.trainers": Command(EmptyRequest, lambda p, r, out: core.train.trainers_later(p, r)),
        "train.logs": Command(LogsRequest, lambda p, r, out: core.train.logs_later(p, r)),
        "train.plan": Command(PlanRequest, lambda p, r, out: core.train.plan_later(p, r)),
        "gpu.status": Command(EmptyRequest, lambda p, r, out: core.gpu_status(p, r)),
    }
    table = _with_actions(core, table)
    return {name: _guarded(core, name, command) for name, command in table.items()}


def _guarded(core: Core, name: str, command: Command) -> Command:
    """voice.json's ``access`` decides, per profile, whether a request may do this (agent/access.py)."""
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in GUARDED):
        return command

    def guard(handler: Handler) -> Handler:
        def run(profile: str, request: Any, out: AudioOut) -> Result:
            access = core.configs.get(profile).access
            check_command(access, name)
            home, profile_dir = core.layout.home, core.layout.profile_dir(profile)
            if name == "train":
                trainer = trainers(core.settings.extra_trainers).get(request.provider)
                if trainer is not None:  # else the train service answers unknown_trainer
                    check_paths(access, home, profile_dir, trainer.params, request.params, "params")
            elif name == "config.set":
                check_config_change(access, home, profile_dir, VoiceConfig, request.changes)
            elif name == "voices.import":
                check_paths(access, home, profile_dir, ImportRequest, {"path": request.path}, "")
            return handler(profile, request, out)

        return run

    def reserve(profile: str, size: int) -> Reservation:  # the same check, before a body is read
        assert command.reserve is not None
        check_command(core.configs.get(profile).access, name)
        room = command.reserve(profile, size)
        return replace(room, run=guard(room.run))

    return replace(command, run=guard(command.run), reserve=reserve if command.reserve is not None else None)


def _with_actions(core: Core, table: dict[str, Command]) -> dict[str, Command]:
    for spec in registry.SPECS:
        for action in spec.actions:
            bases: Any = (action.params, Request)  # the action's parameters plus the id every request may carry
            model = cast(type[Request], create_model(f"{spec.name.title()}{action.name.title()}Request", __base__=bases))
            name = f"{spec.name}.{action.name}"
            if name in table:
                raise ValueError(f"provider {spec.name}'s action {action.name!r} would shadow the command {name!r}")
            table[name] = Command(model, _action_handler(core, spec.name, action))
    return table


def _action_handler(core: Core, provider: str, action: Any) -> Handler:
    def run(profile: str, request: Any, out: AudioOut) -> Result:
        future = core.actions.run(provider, action, profile, request)
        return _with_id(future, request.id)

    return run


def _with_id(future: Future[dict[str, Any]], request_id: str | None) -> Future[dict[str, Any]]:
    """Provider actions answer with their data alone; the answer carries the request's id too."""
    answer: Future[dict[str, Any]] = Future()

    def done(finished: Future[dict[str, Any]]) -> None:
        error = finished.exception()
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result({"id": request_id, **finished.result()})

    future.add_done_callback(done)
    return answer

