"""Managing a profile's kept samples for every door: files are touched and plots drawn on a
thread of this service's own, never on a door's (MQTT's network thread, an HTTP loop)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from agent.config.store import ConfigStore
from agent.events import EventBus
from agent.layout import Layout
from agent.record import manage
from agent.record.requests import DeleteRequest, ExportRequest, ListRequest, PromptsRequest, ShowRequest
from agent.record.service import RecordService
from agent.requests import EmptyRequest
from agent.work import BoundedExecutor


class SampleService:
    def __init__(
        self, records: RecordService, layout: Layout, configs: ConfigStore, events: EventBus, depth: int = 16,
    ) -> None:
        self._records = records
        self._events = events
        self._layout = layout
        self._configs = configs
        self._executor = BoundedExecutor("samples", 1, depth)

    def stop(self) -> None:
        self._executor.shutdown(wait=True)

    def later(self, work: Callable[[], dict[str, Any]]) -> Future[dict[str, Any]]:
        """Run ``work`` on this service's thread (disk and plots: never on a door's thread)."""
        return self._executor.submit(work)

    def list(self, profile: str, request: ListRequest) -> Future[dict[str, Any]]:
        return self.later(lambda: manage.list_samples(self._records.store(profile), request))

    def show(self, profile: str, request: ShowRequest) -> Future[dict[str, Any]]:
        return self.later(lambda: manage.show_sample(self._records.store(profile), request))

    def prompts(self, profile: str, request: PromptsRequest) -> Future[dict[str, Any]]:
        return self.later(lambda: manage.next_prompts(self._records.store(profile), request))

    def delete(self, profile: str, request: DeleteRequest) -> Future[dict[str, Any]]:
        def work() -> dict[str, Any]:
            result = manage.delete_samples(self._records.store(profile), request)
            self._records.publish_readiness(profile)
            return result

        return self.later(work)

    def export(self, profile: str, request: ExportRequest) -> Future[dict[str, Any]]:
        config = self._configs.get(profile)
        speaks_with = config.tts.settings_for(request.target).voice_name  # its dataset may be in use

        def work() -> dict[str, Any]:
            result = manage.export_samples(self._records.store(profile), self._layout, profile, request,
                                           config.record.keep.max_exports, {speaks_with})
            if result["replaced"]:
                self._events.emit(profile, "datasets.pruned", {"provider": request.target, "speakers": result["replaced"],
                                                               "reason": f"more than {config.record.keep.max_exports} exports"})
            return result

        return self.later(work)

    def readiness(self, profile: str, request: EmptyRequest) -> Future[dict[str, Any]]:
        return self.later(lambda: {"id": request.id, "readiness": self._records.publish_readiness(profile)})

    def report(self, profile: str, request: EmptyRequest) -> Future[dict[str, Any]]:
        threshold = self._configs.get(profile).record.threshold
        return self.later(lambda: manage.report(self._records.store(profile), self._layout, profile, threshold, request.id))
