"""The one error type the household's services raise: every edge maps its code to its own form
(an MQTT response, an HTTP status, a Wyoming error event)."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request that cannot be served; ``code`` is machine-readable, the message is for people,
    ``data`` says more where a door can show it (the fields of a refused voice.json change)."""

    def __init__(self, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data
