"""The services' error codes as HTTP statuses; the body is always ``{"error", "code"}``, with
``data`` where the service said more and ``hint`` where the page has words for it (hints.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent.http.hints import page_hint

STATUS = {
    "invalid_json": 400, "invalid_payload": 400, "invalid_profile": 400, "text_too_long": 400, "audio_too_long": 400,
    "invalid_params": 400, "invalid_config": 400, "invalid_audio": 400, "no_speech": 400, "not_ready": 400,
    "nothing_to_export": 400, "record_disabled": 400, "unsupported_format": 400, "unknown_model": 400,
    "not_a_voice": 400, "archive_unsafe": 400, "invalid_name": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "unknown_profile": 404, "unknown_command": 404, "voice_not_found": 404, "unknown_sample": 404,
    "unknown_job": 404, "unknown_trainer": 404, "no_report": 404, "file_not_found": 404,
    "request_timeout": 408,
    "duplicate": 409, "voice_exists": 409,
    "payload_too_large": 413, "archive_too_large": 413,
    "busy": 429,
    "client_gone": 499,  # nobody reads it: the status proxies log for a client that closed first
    "provider_error": 502, "no_audio": 502,
    "provider_unavailable": 503, "shutting_down": 503, "record_unavailable": 503, "analysis_failed": 503,
    "disk_full": 507,  # Insufficient Storage: the voices' disk cap or the free space
}


def status_of(code: str) -> int:
    return STATUS.get(code, 500)


def error_response(code: str, message: str, data: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message, "code": code}
    if data:
        body["data"] = data
    hint = page_hint(code, data)
    if hint:
        body["hint"] = hint
    return web.json_response(body, status=status_of(code))
