"""Each service error code's HTTP status and body (agent/http/errors.py), and the HTTP door's
server thread (agent/http/server.py): it listens where it is told, says where (and that a token
is needed), says why it cannot listen, warns when the connection cap is below the setting, and
stops."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

from agent.http import server as http_server
from agent.http.errors import error_response, status_of
from agent.http.server import HttpEdge
from agent.settings import AgentSettings
from tests.agent.http.fake_core import fake_core
from tests.mosquitto import free_port

STATUSES = {
    400: ["invalid_json", "invalid_payload", "invalid_profile", "text_too_long", "audio_too_long", "invalid_params",
          "invalid_config", "invalid_audio", "no_speech", "not_ready", "nothing_to_export", "record_disabled"],
    401: ["unauthorized"], 403: ["forbidden"],
    404: ["unknown_profile", "unknown_command", "voice_not_found", "unknown_sample", "unknown_job", "unknown_trainer",
          "no_report"],
    408: ["request_timeout"], 409: ["duplicate"], 413: ["payload_too_large"], 429: ["busy"],
    502: ["provider_error", "no_audio"],
    503: ["provider_unavailable", "shutting_down", "record_unavailable", "analysis_failed"],
    500: ["internal_error", "anything_new"],
}


@pytest.mark.parametrize(("code", "status"), [(c, s) for s, codes in STATUSES.items() for c in codes])
def test_each_code_has_its_status(code: str, status: int) -> None:
    assert status_of(code) == status


def test_the_body_is_error_and_code_and_data_only_when_there_is_some() -> None:
    plain = error_response("busy", "try later")
    assert (plain.status, plain.content_type) == (429, "application/json")
    assert json.loads(plain.text or "") == {"error": "try later", "code": "busy"}
    assert json.loads(error_response("busy", "x", {}).text or "") == {"error": "x", "code": "busy"}
    detailed = error_response("invalid_config", "bad", {"fields": ["a"]})
    assert json.loads(detailed.text or "") == {"error": "bad", "code": "invalid_config", "data": {"fields": ["a"]}}


def health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def test_the_door_listens_says_where_and_stops(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    edge = HttpEdge(fake_core(), AgentSettings(home=tmp_path, http_port=port))
    with caplog.at_level(logging.INFO):
        edge.start()
        try:
            assert "http" in [t.name for t in threading.enumerate()]
            assert health(port)
        finally:
            edge.stop()
    # one line, and no access log: a request is not a line of the household's log
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("agent.http", "aiohttp"))] == [
        f"HTTP API on http://127.0.0.1:{port}/api"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    assert "http" not in [t.name for t in threading.enumerate()]
    edge.stop()  # a second stop does nothing


def test_with_a_token_the_line_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    edge = HttpEdge(fake_core(), AgentSettings(home=tmp_path, http_port=port, http_token="s3cret-kitchen-token"))
    with caplog.at_level(logging.INFO, "agent.http.server"):
        edge.start()
    edge.stop()
    assert f"HTTP API on http://127.0.0.1:{port}/api (token required)" in [r.getMessage() for r in caplog.records]


def test_a_taken_port_is_refused_in_words(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        edge = HttpEdge(fake_core(), AgentSettings(home=tmp_path, http_port=port))
        with pytest.raises(RuntimeError) as refused:
            edge.start()
        edge.stop()
    assert str(refused.value) == (
        f"the HTTP API cannot listen on 127.0.0.1:{port}: error while attempting to bind on address "
        f"('127.0.0.1', {port}): address already in use (set VOICE_AGENT_HTTP_PORT, or VOICE_AGENT_HTTP_ENABLED=false)")


def test_a_cap_below_the_setting_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "connection_cap", lambda wanted: 7)
    monkeypatch.setattr(http_server, "open_file_limit", lambda: 64)
    settings = AgentSettings(home=tmp_path, http_port=free_port())
    edge = HttpEdge(fake_core(), settings)
    with caplog.at_level(logging.WARNING, "agent.http.server"):
        edge.start()
    edge.stop()
    assert [r.getMessage() for r in caplog.records] == [
        f"HTTP connections capped at 7, an eighth of the open-file limit (64), not {settings.http_max_connections}: "
        "raise the hard limit (LimitNOFILE=, ulimit -Hn)"]
    monkeypatch.setattr(http_server, "connection_cap", lambda wanted: wanted)
    caplog.clear()
    edge = HttpEdge(fake_core(), AgentSettings(home=tmp_path, http_port=free_port()))
    with caplog.at_level(logging.WARNING, "agent.http.server"):
        edge.start()
    edge.stop()
    assert caplog.records == []
