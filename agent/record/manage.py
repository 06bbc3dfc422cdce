"""Sample management shared by every door and the CLI: list, show, delete, export, readiness,
report, the prompts to read next. Each takes validated arguments and returns plain data."""

from __future__ import annotations

from typing import Any

from agent.errors import ServiceError
from agent.layout import Layout
from agent.record import export as exporter
from agent.record import prompts as prompt_list
from agent.record.keep import exports_beyond, remove_exports
from agent.record.readiness import all_providers
from agent.record.report import write_report
from agent.record.requests import DeleteRequest, ExportRequest, ListRequest, PromptsRequest, ShowRequest
from agent.record.store import SampleStore


def list_samples(store: SampleStore, request: ListRequest) -> dict[str, Any]:
    samples = store.list(order=request.order, limit=request.limit, min_score=request.min_score)
    return {"id": request.id, "samples": [s.as_dict() for s in samples]}


def next_prompts(store: SampleStore, request: PromptsRequest) -> dict[str, Any]:
    """The next sentences to read (never one a kept sample holds), and how many are read."""
    every = prompt_list.load()
    read = store.transcripts()
    left = prompt_list.next_prompts(every, read, len(every))
    return {"id": request.id, "prompts": left[:request.count], "total": len(every), "read": len(every) - len(left)}


def show_sample(store: SampleStore, request: ShowRequest) -> dict[str, Any]:
    sample = store.get(request.sample)
    if sample is None:
        raise ServiceError("unknown_sample", f"no sample {request.sample!r}")
    return {"id": request.id, "sample": sample.as_dict(), "path": str(store.path(sample))}


def delete_samples(store: SampleStore, request: DeleteRequest) -> dict[str, Any]:
    ids = list(request.samples)
    if request.below is not None:
        ids += [s.id for s in store.list(order="score") if s.score < request.below]
    return {"id": request.id, "deleted": store.delete(ids)}


def export_samples(
    store: SampleStore, layout: Layout, profile: str, request: ExportRequest, max_exports: int, protect: set[str],
) -> dict[str, Any]:
    """Write the dataset; then the oldest other exports of that provider beyond ``max_exports``
    go (``replaced``), so a flood of exports to new names cannot fill the disk."""
    chosen = exporter.choose(store, request.target, request.samples, request.best, request.min_score)
    if not chosen:
        raise ServiceError("nothing_to_export", f"no {exporter.dataset_of(request.target).needs} to export")
    target = exporter.target_dir(layout, profile, request.target, request.speaker)
    exporter.export(store, target, request.target, chosen)
    replaced = remove_exports(exports_beyond(target.parent, max_exports, {target.name, *protect}))
    return {"id": request.id, "target": str(target), "exported": [s.id for s in chosen],
            "minutes": round(sum(s.duration for s in chosen) / 60, 2), "replaced": replaced}


def readiness(store: SampleStore, threshold: float, request_id: str | None = None) -> dict[str, Any]:
    return {"id": request_id, "readiness": all_providers(store.list(), threshold)}


def report(store: SampleStore, layout: Layout, profile: str, threshold: float, request_id: str | None = None) -> dict[str, Any]:
    png, txt = write_report(profile, store.list(), threshold, layout.reports_dir(profile))
    return {"id": request_id, "png": str(png), "summary": str(txt), "text": txt.read_text(encoding="utf-8")}
