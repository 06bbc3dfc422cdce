"""The voices path's requests (MQTT payloads, HTTP bodies, the CLI's arguments)."""

from __future__ import annotations

from pydantic import Field

from agent.requests import ProviderName, Request


class VoicesRequest(Request):
    """Which voices to list: installed ones, and (``catalog``) the ones a download would add."""

    catalog: bool = Field(True, description="Also list catalog voices that are not installed (marked installed: false).")
    provider: ProviderName | None = Field(None, description="Only this provider's voices.")
    language: str = Field("", max_length=16, pattern=r"^[A-Za-z_-]*$",
                          description="Only voices of this language: a family (en) or a code (en_US, en-us).")
