"""The record path's MQTT commands: one place that maps each to its handler."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from agent.config_store import ConfigStore
from agent.mqtt.router import Command, Router, binary_or_json
from agent.mqtt.schema import EmptyRequest, RecordRequest
from agent.profiles import Profiles
from agent.record import manage
from agent.record.service import RecordService


class RecordCommands:
    """Sample management touches files and draws plots: it runs on its own thread, not MQTT's."""

    def __init__(self, records: RecordService, profiles: Profiles, configs: ConfigStore) -> None:
        self._records = records
        self._profiles = profiles
        self._configs = configs
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samples")

    def register(self, router: Router, max_audio_bytes: int) -> None:
        router.register("record", Command(RecordRequest, self._records.submit, max_audio_bytes, binary_or_json))
        router.register("speaker.enroll", Command(RecordRequest, self._records.enroll, max_audio_bytes, binary_or_json))
        router.register("samples.list", Command(manage.ListRequest, self._later(self._list)))
        router.register("samples.show", Command(manage.ShowRequest, self._later(self._show)))
        router.register("samples.delete", Command(manage.DeleteRequest, self._later(self._delete)))
        router.register("samples.export", Command(manage.ExportRequest, self._later(self._export)))
        router.register("samples.readiness", Command(EmptyRequest, self._later(self._readiness)))
        router.register("samples.report", Command(EmptyRequest, self._later(self._report)))

    def stop(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _later(self, handler: Callable[[str, Any], dict[str, Any]]) -> Callable[[str, Any], Future[dict[str, Any]]]:
        return lambda profile, request: self._executor.submit(handler, profile, request)

    def _list(self, profile: str, request: manage.ListRequest) -> dict[str, Any]:
        return manage.list_samples(self._records.store(profile), request)

    def _show(self, profile: str, request: manage.ShowRequest) -> dict[str, Any]:
        return manage.show_sample(self._records.store(profile), request)

    def _delete(self, profile: str, request: manage.DeleteRequest) -> dict[str, Any]:
        result = manage.delete_samples(self._records.store(profile), request)
        self._records.publish_readiness(profile)
        return result

    def _export(self, profile: str, request: manage.ExportRequest) -> dict[str, Any]:
        return manage.export_samples(self._records.store(profile), self._profiles.directory(profile), request)

    def _readiness(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        return {"id": request.id, "readiness": self._records.publish_readiness(profile)}

    def _report(self, profile: str, request: EmptyRequest) -> dict[str, Any]:
        threshold = self._configs.get(profile).record.threshold
        return manage.report(self._records.store(profile), profile, self._profiles.directory(profile), threshold, request.id)
