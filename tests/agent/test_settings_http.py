"""The HTTP door's settings: off loopback the agent starts only with a token long enough to be
secret (24 characters, no whitespace); an empty token is none; the connection cap and the idle
timeout are bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.settings import MIN_TOKEN_CHARS, AgentSettings, SettingsError, describe_settings_error, load_settings

STRONG = "k7Qm2xVt9LpR4sWz8NcY3bHd"


def settings(**values: object) -> AgentSettings:
    return AgentSettings(**values)  # type: ignore[arg-type]


def test_the_shortest_token_off_loopback_is_24_characters() -> None:
    assert MIN_TOKEN_CHARS == 24 and len(STRONG) == 24
    assert settings(http_host="0.0.0.0", http_token=STRONG).http_token is not None
    with pytest.raises(ValidationError, match="at least 24 characters"):
        settings(http_host="0.0.0.0", http_token=STRONG[:-1])


@pytest.mark.parametrize("token", [None, "", "x"])
def test_off_loopback_no_or_a_short_token_stops_the_agent(token: str | None) -> None:
    with pytest.raises(ValidationError, match="VOICE_AGENT_HTTP_TOKEN"):
        settings(http_host="192.168.1.5", http_token=token)


@pytest.mark.parametrize("token", [" " * 30, f"{STRONG} ", f" {STRONG}", f"{STRONG[:12]} {STRONG[12:]}",
                                   f"{STRONG}\t", f"{STRONG}\n", f"{STRONG}\x00", f"{STRONG}\u00a0"])
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_whitespace_in_a_token_is_refused_anywhere(token: str, host: str) -> None:
    with pytest.raises(ValidationError, match="without whitespace") as refused:
        settings(http_host=host, http_token=token)
    assert STRONG[:12] not in describe_settings_error(refused.value)  # the journal never gets the token


def test_an_empty_token_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``VOICE_AGENT_HTTP_TOKEN=`` as an agent.env line: no token (so on loopback, the API is open
    to this machine only; off loopback, the agent does not start)."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "agent.env").write_text("VOICE_AGENT_HTTP_TOKEN=\n")
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    assert load_settings().http_token is None
    monkeypatch.setenv("VOICE_AGENT_HTTP_HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match="VOICE_AGENT_HTTP_TOKEN"):
        load_settings()


def test_on_loopback_a_short_token_is_the_households_choice() -> None:
    assert settings(http_host="127.0.0.1", http_token="kitchen").http_token is not None
    assert settings(http_host="localhost", http_token="kitchen").http_token is not None


def test_with_the_door_off_the_token_is_not_asked_for() -> None:
    assert settings(http_enabled=False, http_host="0.0.0.0").http_token is None


@pytest.mark.parametrize(("name", "value"), [
    ("http_max_connections", 0), ("http_max_connections", 65537), ("http_idle_timeout", 0), ("http_idle_timeout", 3601),
])
def test_connection_settings_are_bounded(name: str, value: float) -> None:
    with pytest.raises(ValidationError, match=name):
        settings(**{name: value})
    assert settings(http_max_connections=1, http_idle_timeout=0.5).http_max_connections == 1
