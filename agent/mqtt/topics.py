"""Every topic the agent uses, built in one place (see README "MQTT API")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    base: str

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def requests(self) -> str:
        """The one subscription that carries every command for every profile."""
        return f"{self.base}/+/request/+"

    def request(self, profile: str, command: str) -> str:
        return f"{self.base}/{profile}/request/{command}"

    def response(self, profile: str, command: str) -> str:
        return f"{self.base}/{profile}/response/{command}"

    def event(self, profile: str, name: str) -> str:
        return f"{self.base}/{profile}/event/{name}"

    def state(self, profile: str) -> str:
        return f"{self.base}/{profile}/state"

    def audio(self, profile: str, request_id: str, seq: int | None = None) -> str:
        topic = f"{self.base}/{profile}/audio/{request_id}"
        return topic if seq is None else f"{topic}/{seq}"

    def parse_request(self, topic: str) -> tuple[str, str] | None:
        """(profile, command) of a request topic, else None."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix):].split("/")
        if len(parts) != 3 or parts[1] != "request":
            return None
        return parts[0], parts[2]
