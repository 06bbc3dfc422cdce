"""Requests of the record path: recordings, and managing the kept samples."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from agent.requests import Request, Text
from providers import registry
from providers.common.names import PlainName

SAMPLE_ID = r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$"


def is_sample_id(value: str) -> bool:
    return bool(re.match(SAMPLE_ID, value))


def _strict_b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64: {exc}") from exc


def _export_target(value: str) -> str:
    targets = [s.name for s in registry.SPECS if s.dataset is not None]
    name = registry.canonical(value) if value in (*registry.NAMES, *registry.ALIASES) else value
    if name not in targets:
        raise ValueError(f"must be one of {', '.join(targets)}")
    return name


Base64Audio = Annotated[bytes, BeforeValidator(_strict_b64)]
ExportTarget = Annotated[str, AfterValidator(_export_target)]


class RecordRequest(Request):
    """A recording: the payload is the audio itself (WAV), or this JSON envelope."""

    audio: bytes | None = Field(None, exclude=True, description="Set from a binary payload.")
    audio_b64: Base64Audio | None = Field(None, description="The WAV file, base64-encoded.")
    transcript: Text | None = Field(None, max_length=2000, description="What was said, if known.")
    source: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Where it came from.")

    @model_validator(mode="after")
    def _one_audio(self) -> "RecordRequest":
        if (self.audio is None) == (self.audio_b64 is None):
            raise ValueError("send the WAV as the payload, or as audio_b64 in a JSON envelope")
        return self

    def wav(self) -> bytes:
        return self.audio if self.audio is not None else bytes(self.audio_b64 or b"")


class ListRequest(Request):
    order: Literal["created", "score", "duration"] = "created"
    limit: int = Field(100, ge=1, le=10000)
    min_score: float | None = Field(None, ge=0, le=100)


class PromptsRequest(Request):
    count: int = Field(10, ge=1, le=100, description="How many of the next sentences to read.")


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
    target: ExportTarget = Field(description="The provider whose dataset to write.")
    speaker: PlainName = "default"
    samples: list[str] | None = Field(None, max_length=10000, description="These samples; else the best.")
    best: int | None = Field(None, ge=1, le=10000, description="At most this many, best first.")
    min_score: float | None = Field(None, ge=0, le=100)
