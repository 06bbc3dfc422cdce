"""What every request to the services shares, whichever door it came through."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, Field, PlainValidator, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from agent.errors import ServiceError
from providers import registry
from providers.settings_base import InputModel

# Request ids become topic segments (voice/<profile>/audio/<id>): keep them plain.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
MAX_JSON_DEPTH = 32  # voice.json nests four deep; nothing the agent reads needs more
# Unicode's control characters (C0, DEL, C1) but tab, line feed and carriage return.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"numbers must be finite, and {text[:24]} is not")
    return number


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"numbers must be finite, and {name} is not")


def load_json(raw: bytes | str) -> Any:
    """JSON from the network or a file, or ``ValueError`` saying why not: bad syntax or UTF-8, and
    what would otherwise crash a reader (30 000 nested brackets, a 5000-digit number) or break
    what it is written into (``Infinity``, ``NaN``, ``1e999999``: Python's reader takes them)."""
    try:
        document = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"not valid JSON: nested deeper than {MAX_JSON_DEPTH}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise ValueError(f"not valid JSON: {exc}") from exc
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_JSON_DEPTH:
                    raise ValueError(f"not valid JSON: nested deeper than {MAX_JSON_DEPTH}")
                stack.append((child, depth + 1))
    return document


def json_object(raw: bytes | str, what: str = "payload") -> dict[str, Any]:
    """A request's JSON object, with the codes every door answers bad input with: ``invalid_json``
    for what ``load_json`` refuses, ``invalid_payload`` for JSON that is not an object. Empty is
    ``{}`` (a command without parameters)."""
    if not raw.strip():
        return {}
    try:
        document = load_json(raw)
    except ValueError as exc:
        raise ServiceError("invalid_json", f"the {what} is {exc}") from exc
    if not isinstance(document, dict):
        raise ServiceError("invalid_payload", f"{what} must be a JSON object")
    return document


_SPELLINGS = (*registry.NAMES, *registry.ALIASES)


def _provider(value: object) -> str:
    if isinstance(value, str) and value in _SPELLINGS:
        return registry.canonical(value)
    expected = ", ".join(repr(n) for n in _SPELLINGS[:-1]) + f" or {_SPELLINGS[-1]!r}"
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


def _no_control_characters(value: str) -> str:
    found = CONTROL_CHARACTER.search(value)
    if found is not None:
        raise ValueError(
            f"contains the control character U+{ord(found.group()):04X} at position {found.start()}; "
            "of those only tab, line feed and carriage return are text"
        )
    return value


# What a person says or reads: a speak request's text, a recording's transcript. A NUL or an
# escape sequence is no speech (and a NUL made Piper fail with a traceback).
Text = Annotated[str, AfterValidator(_no_control_characters)]

# A provider's name or one of its aliases (the seed's "gpt-sovits"), held as the provider's name.
ProviderName = Annotated[str, PlainValidator(_provider), WithJsonSchema({"enum": list(registry.NAMES)})]


class Request(InputModel):
    id: str | None = Field(None, pattern=REQUEST_ID_PATTERN, description="Echoed in the response.")


class EmptyRequest(Request):
    """A command that takes nothing but an optional id."""


class ConfigSetRequest(Request):
    """A change to the profile's voice.json: merged into it, validated, written atomically."""

    changes: dict[str, Any] = Field(description='Any subset of voice.json, e.g. {"tts": {"provider": "kokoro"}}.')


def describe_validation_error(exc: ValidationError) -> str:
    """``field: message; ...`` - the key path a person needs to fix the request."""
    return "; ".join(f"{p['field'] or 'payload'}: {p['message']}" for p in validation_problems(exc))


def validation_problems(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """``[{field, message}]`` (``data.problems`` of a refusal): what a form shows next to each
    field, as ``config.set`` does for voice.json. ``prefix`` places a nested model's fields."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in (*([prefix] if prefix else []), *err["loc"]))
        problems.append({"field": field, "message": err["msg"]})
    return problems
