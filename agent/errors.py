"""The one error type the household's services raise: every edge maps its code to its own form
(an MQTT response, an HTTP status, a Wyoming error event)."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be served; ``code`` is machine-readable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
