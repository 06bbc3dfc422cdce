"""One table of commands; every request gets exactly one response.

Handlers run on the MQTT thread and must return quickly: a handler with long work returns a
``Future`` and the router answers when it completes. A handler reports a user error by
raising ``RequestError``; anything else becomes an ``internal_error`` response and a log entry.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.mqtt.schema import REQUEST_ID_PATTERN, Request, Response
from agent.profiles import is_plain_name

log = logging.getLogger(__name__)

VALID_ID = re.compile(REQUEST_ID_PATTERN)

HandlerResult = dict[str, Any] | Future[dict[str, Any]]
Handler = Callable[[str, Any], HandlerResult]


class RequestError(Exception):
    """A request that cannot be served; ``code`` is machine-readable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_json_object(payload: bytes) -> dict[str, Any]:
    if not payload.strip():
        return {}
    try:
        document = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError("invalid_json", f"payload is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise RequestError("invalid_payload", "payload must be a JSON object")
    return document


def binary_or_json(payload: bytes) -> dict[str, Any]:
    """A payload that is either raw audio or a JSON envelope (it starts with '{')."""
    if payload.lstrip()[:1] == b"{":
        return parse_json_object(payload)
    return {"audio": payload}


@dataclass(frozen=True)
class Command:
    model: type[Request]
    handler: Handler
    max_bytes: int | None = None  # None: the agent's max_request_bytes
    decode: Callable[[bytes], dict[str, Any]] = parse_json_object


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{field}: {err['msg']}")
    return "; ".join(parts)


class Router:
    def __init__(
        self,
        respond: Callable[[str, str, Response], None],
        profile_exists: Callable[[str], bool],
        max_request_bytes: int,
    ) -> None:
        self._respond = respond
        self._profile_exists = profile_exists
        self._max_bytes = max_request_bytes
        self._commands: dict[str, Command] = {}

    def register(self, name: str, command: Command) -> None:
        if name in self._commands:
            raise ValueError(f"command {name!r} registered twice")
        self._commands[name] = command

    @property
    def commands(self) -> list[str]:
        return sorted(self._commands)

    def dispatch(self, profile: str, name: str, payload: bytes) -> None:
        request_id: str | None = None
        try:
            command = self._commands.get(name)
            if command is None:
                raise RequestError(
                    "unknown_command", f"unknown command {name!r}; known: {', '.join(self.commands)}"
                )
            limit = command.max_bytes or self._max_bytes
            if len(payload) > limit:
                raise RequestError("payload_too_large", f"payload is {len(payload)} bytes; the limit is {limit}")
            document = command.decode(payload)
            raw_id = document.get("id")
            request_id = raw_id if isinstance(raw_id, str) and VALID_ID.match(raw_id) else None
            check_profile(profile, self._profile_exists)
            try:
                request = command.model.model_validate(document)
            except ValidationError as exc:
                raise RequestError("invalid_payload", describe_validation_error(exc)) from exc
            result = command.handler(profile, request)
        except RequestError as exc:
            self._error(profile, name, request_id, exc.code, str(exc))
            return
        except Exception as exc:
            log.exception("command %s for %s failed", name, profile)
            self._error(profile, name, request_id, "internal_error", f"{type(exc).__name__}: {exc}")
            return
        if isinstance(result, Future):
            result.add_done_callback(lambda f: self._finish(profile, name, request_id, f))
        else:
            self._ok(profile, name, request_id, result)

    def _finish(self, profile: str, name: str, request_id: str | None, future: Future[dict[str, Any]]) -> None:
        exc = future.exception()
        if exc is None:
            self._ok(profile, name, request_id, future.result())
        elif isinstance(exc, RequestError):
            self._error(profile, name, request_id, exc.code, str(exc))
        else:
            log.error("command %s for %s failed: %r", name, profile, exc)
            self._error(profile, name, request_id, "internal_error", f"{type(exc).__name__}: {exc}")

    def _ok(self, profile: str, name: str, request_id: str | None, data: dict[str, Any]) -> None:
        self._respond(profile, name, Response(id=data.get("id", request_id), status="ok", data=data))

    def _error(self, profile: str, name: str, request_id: str | None, code: str, message: str) -> None:
        log.warning("request %s/%s (id=%s) refused: %s: %s", profile, name, request_id, code, message)
        self._respond(profile, name, Response(id=request_id, status="error", error=message, code=code))


def check_profile(profile: str, exists: Callable[[str], bool]) -> None:
    if not is_plain_name(profile):
        raise RequestError("invalid_profile", f"profile name {profile!r} is not a plain identifier")
    if not exists(profile):
        raise RequestError("unknown_profile", f"no profile {profile!r} (profiles are directories under profiles/)")


def model_json(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()
