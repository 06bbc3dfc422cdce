"""Sample management shared by the CLI and the MQTT commands: list, show, delete, export,
readiness, report. Each takes validated arguments and returns plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from agent.mqtt.router import RequestError
from agent.mqtt.schema import Request
from agent.profiles import is_plain_name
from agent.record import export as exporter
from agent.record.readiness import all_providers
from agent.record.report import write_report
from agent.record.store import SampleStore

SAMPLE_ID = r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$"


class ListRequest(Request):
    order: Literal["created", "score", "duration"] = "created"
    limit: int = Field(100, ge=1, le=10000)
    min_score: float | None = Field(None, ge=0, le=100)


class ShowRequest(Request):
    sample: str = Field(pattern=SAMPLE_ID)


class DeleteRequest(Request):
    samples: list[str] = Field(default_factory=list, max_length=10000)
    below: float | None = Field(None, ge=0, le=100, description="Delete every sample scoring below this.")

    @model_validator(mode="after")
    def _something(self) -> "DeleteRequest":
        if not self.samples and self.below is None:
            raise ValueError("name samples to delete, or give 'below'")
        for sample in self.samples:
            if not is_sample_id(sample):
                raise ValueError(f"not a sample id: {sample!r}")
        return self


class ExportRequest(Request):
    target: Literal["rvc", "kokoro", "sovits"]
    speaker: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    samples: list[str] | None = Field(None, max_length=10000, description="These samples; else the best.")
    best: int | None = Field(None, ge=1, le=10000, description="At most this many, best first.")
    min_score: float | None = Field(None, ge=0, le=100)


def is_sample_id(value: str) -> bool:
    import re

    return bool(re.match(SAMPLE_ID, value))


def list_samples(store: SampleStore, request: ListRequest) -> dict[str, Any]:
    samples = store.list(order=request.order, limit=request.limit, min_score=request.min_score)
    return {"id": request.id, "samples": [s.as_dict() for s in samples]}


def show_sample(store: SampleStore, request: ShowRequest) -> dict[str, Any]:
    sample = store.get(request.sample)
    if sample is None:
        raise RequestError("unknown_sample", f"no sample {request.sample!r}")
    return {"id": request.id, "sample": sample.as_dict(), "path": str(store.path(sample))}


def delete_samples(store: SampleStore, request: DeleteRequest) -> dict[str, Any]:
    ids = list(request.samples)
    if request.below is not None:
        ids += [s.id for s in store.list(order="score") if s.score < request.below]
    return {"id": request.id, "deleted": store.delete(ids)}


def export_samples(store: SampleStore, profile_dir: Path, request: ExportRequest) -> dict[str, Any]:
    if not is_plain_name(request.speaker):
        raise RequestError("invalid_payload", f"speaker {request.speaker!r} is not a plain identifier")
    chosen = exporter.choose(store, request.target, request.samples, request.best, request.min_score)
    if not chosen:
        need = {"kokoro": "samples with transcripts", "sovits": "a 5-10 s sample with a transcript"}
        raise RequestError("nothing_to_export", f"no {need.get(request.target, 'samples')} to export")
    target = exporter.export(store, profile_dir, request.target, request.speaker, chosen)
    return {"id": request.id, "target": str(target), "exported": [s.id for s in chosen],
            "minutes": round(sum(s.duration for s in chosen) / 60, 2)}


def readiness(store: SampleStore, threshold: float, request_id: str | None = None) -> dict[str, Any]:
    return {"id": request_id, "readiness": all_providers(store.list(), threshold)}


def report(store: SampleStore, profile: str, profile_dir: Path, threshold: float, request_id: str | None = None) -> dict[str, Any]:
    png, txt = write_report(profile, store.list(), threshold, profile_dir / "out" / "reports")
    return {"id": request_id, "png": str(png), "summary": str(txt), "text": txt.read_text(encoding="utf-8")}
