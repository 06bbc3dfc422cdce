"""What goes over MQTT that is MQTT's own: the response envelope (request models are the
services', in ``agent/<path>/requests.py``; the topics are in ``topics.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class Response(BaseModel):
    id: str | None
    status: Literal["ok", "error"]
    data: dict[str, Any] | None = None
    error: str | None = None
    code: str | None = None
