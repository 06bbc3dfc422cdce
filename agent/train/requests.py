"""Requests of the train path."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from agent.requests import Request
from providers.common.names import PlainName

JOB_ID = r"^[0-9]{14}-[0-9a-f]{6}$"


class TrainRequest(Request):
    provider: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="kokoro or rvc.")
    speaker: PlainName = "default"
    when: Literal["now", "idle"] = "idle"
    params: dict[str, Any] = Field(default_factory=dict)
    check: bool = Field(False, description="Only check: refuse as this request would be refused, or say it would "
                                           "be queued, and queue nothing (the page's Start button asks this).")


class PlanRequest(Request):
    provider: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="The trainer.")
    speaker: PlainName = "default"
    params: dict[str, Any] = Field(default_factory=dict)


class JobRequest(Request):
    job: str | None = Field(None, pattern=JOB_ID)


class LogsRequest(Request):
    job: str = Field(pattern=JOB_ID)
    lines: int = Field(200, ge=1, le=5000, description="How many of the last lines.")
