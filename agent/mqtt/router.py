"""MQTT requests into the command table; every request gets exactly one response.

The router parses and validates (off the network thread: the edge hands it requests on a
thread of its own), calls the command, and maps a refusal (``ServiceError``, a provider's
error) to ``{status: "error", code, error}``; anything else becomes an ``internal_error``
response and a log entry.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from pydantic import BaseModel

from agent.commands import Command, check_profile, find, validate
from agent.errors import ServiceError
from agent.mqtt.schema import Response
from agent.requests import REQUEST_ID_PATTERN, json_object
from agent.speak.service import AudioOut
from providers.base import ProviderError

log = logging.getLogger(__name__)

VALID_ID = re.compile(REQUEST_ID_PATTERN)

Respond = Callable[[str, str, Response], None]
OutputFor = Callable[[str], AudioOut]  # profile -> where its requests' audio goes


def binary_or_json(payload: bytes) -> dict[str, Any]:
    """A payload that is either raw audio or a JSON envelope (it starts with '{')."""
    if payload.lstrip()[:1] == b"{":
        return json_object(payload)
    return {"audio": payload}


class Router:
    def __init__(
        self,
        commands: dict[str, Command],
        respond: Respond,
        output_for: OutputFor,
        profile_exists: Callable[[str], bool],
        max_request_bytes: int,
        max_audio_bytes: int,
        elsewhere: Callable[[str], bool] = lambda profile: False,
    ) -> None:
        """``elsewhere(profile)``: another online node of the household has that profile; its
        requests are that node's to answer (this one says nothing, not ``unknown_profile``)."""
        self._commands = commands
        self._respond = respond
        self._output_for = output_for
        self._profile_exists = profile_exists
        self._elsewhere = elsewhere
        self._max_bytes = max_request_bytes
        self._max_audio_bytes = max_audio_bytes

    def at_home_elsewhere(self, profile: str) -> bool:
        """Not this node's profile but another online node's: its requests are that node's."""
        return not self._profile_exists(profile) and self._elsewhere(profile)

    def dispatch(self, profile: str, name: str, payload: bytes) -> None:
        if self.at_home_elsewhere(profile):
            log.debug("request %s/%s is for a profile at home on another node", profile, name)
            return
        request_id: str | None = None
        try:
            command = find(self._commands, name)
            limit = self._max_audio_bytes if command.audio_in else self._max_bytes
            if len(payload) > limit:
                raise ServiceError("payload_too_large", f"payload is {len(payload)} bytes; the limit is {limit}")
            document = binary_or_json(payload) if command.audio_in else json_object(payload)
            raw_id = document.get("id")
            request_id = raw_id if isinstance(raw_id, str) and VALID_ID.match(raw_id) else None
            check_profile(profile, self._profile_exists)
            result = command.run(profile, validate(command, document), self._output_for(profile))
        except (ServiceError, ProviderError) as exc:
            self._error(profile, name, request_id, exc.code, str(exc), getattr(exc, "data", None))
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
        elif isinstance(exc, (ServiceError, ProviderError)):
            self._error(profile, name, request_id, exc.code, str(exc), getattr(exc, "data", None))
        else:
            log.error("command %s for %s failed: %r", name, profile, exc)
            self._error(profile, name, request_id, "internal_error", f"{type(exc).__name__}: {exc}")

    def _ok(self, profile: str, name: str, request_id: str | None, data: dict[str, Any]) -> None:
        self._respond(profile, name, Response(id=data.get("id", request_id), status="ok", data=data))

    def _error(self, profile: str, name: str, request_id: str | None, code: str, message: str,
               data: dict[str, Any] | None = None) -> None:
        log.warning("request %s/%s (id=%s) refused: %s: %s", profile, name, request_id, code, message)
        self._respond(profile, name, Response(id=request_id, status="error", error=message, code=code, data=data))


def model_json(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()
