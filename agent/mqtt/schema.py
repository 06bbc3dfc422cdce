"""Payloads of every request and response, validated at the edge."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

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


def _strict_b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64: {exc}") from exc


Base64Audio = Annotated[bytes, BeforeValidator(_strict_b64)]


class RecordRequest(Request):
    """A recording: the payload is the audio itself (WAV), or this JSON envelope."""

    audio: bytes | None = Field(None, exclude=True, description="Set from a binary payload.")
    audio_b64: Base64Audio | None = Field(None, description="The WAV file, base64-encoded.")
    transcript: str | None = Field(None, max_length=2000, description="What was said, if known.")
    source: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Where it came from.")

    @model_validator(mode="after")
    def _one_audio(self) -> "RecordRequest":
        if (self.audio is None) == (self.audio_b64 is None):
            raise ValueError("send the WAV as the payload, or as audio_b64 in a JSON envelope")
        return self

    def wav(self) -> bytes:
        return self.audio if self.audio is not None else bytes(self.audio_b64 or b"")
