"""What every request to the services shares, whichever door it came through."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from providers import registry

# Request ids become topic segments (voice/<profile>/audio/<id>): keep them plain.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

_SPELLINGS = (*registry.NAMES, *registry.ALIASES)


def _provider(value: object) -> str:
    if isinstance(value, str) and value in _SPELLINGS:
        return registry.canonical(value)
    expected = ", ".join(repr(n) for n in _SPELLINGS[:-1]) + f" or {_SPELLINGS[-1]!r}"
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


# A provider's name or one of its aliases (the seed's "gpt-sovits"), held as the provider's name.
ProviderName = Annotated[str, PlainValidator(_provider), WithJsonSchema({"enum": list(registry.NAMES)})]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=REQUEST_ID_PATTERN, description="Echoed in the response.")


class EmptyRequest(Request):
    """A command that takes nothing but an optional id."""


class ConfigSetRequest(Request):
    """A change to the profile's voice.json: merged into it, validated, written atomically."""

    changes: dict[str, Any] = Field(description='Any subset of voice.json, e.g. {"tts": {"provider": "kokoro"}}.')


def describe_validation_error(exc: ValidationError) -> str:
    """``field: message; ...`` - the key path a person needs to fix the request."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{field}: {err['msg']}")
    return "; ".join(parts)
