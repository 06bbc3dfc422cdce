"""Payloads of every request and response, validated at the edge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.voice_config import ProviderName

# Request ids become topic segments (voice/<profile>/audio/<id>): keep them plain.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=REQUEST_ID_PATTERN, description="Echoed in the response.")


class SpeakRequest(Request):
    text: str = Field(min_length=1, description="What to say.")
    provider: ProviderName | None = Field(None, description="Overrides tts.provider.")
    voice: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:,-]{0,127}$", description="Voice name.")
    speed: float | None = Field(None, ge=0.5, le=2.0, description="Overrides the provider's speed.")
    stream: bool = Field(False, description="One WAV per sentence on audio/<id>/<seq>.")


class EmptyRequest(Request):
    """A command that takes nothing but an optional id."""


class Response(BaseModel):
    id: str | None
    status: Literal["ok", "error"]
    data: dict[str, Any] | None = None
    error: str | None = None
    code: str | None = None
