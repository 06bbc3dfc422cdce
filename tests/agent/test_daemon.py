"""Start-up's small rules: where the web page is, and the warning for a home that is a checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.daemon import checkout_warning, page_address
from agent.settings import AgentSettings


@pytest.mark.parametrize(("host", "port", "address"), [
    ("127.0.0.1", 4321, "http://127.0.0.1:4321/"),
    ("localhost", 80, "http://localhost:80/"),
    ("::1", 4321, "http://[::1]:4321/"),
    ("192.168.1.5", 4321, "http://192.168.1.5:4321/"),
])
def test_page_address(host: str, port: int, address: str) -> None:
    assert page_address(host, port) == address


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_wildcard_address_is_this_machines_name(monkeypatch: pytest.MonkeyPatch, wildcard: str) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "homeserver")
    assert page_address(wildcard, 4321) == "http://homeserver:4321/"


def test_a_checkout_as_home_is_warned_about_only_when_no_home_was_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOICE_AGENT_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert checkout_warning(AgentSettings()) is None  # not a checkout
    (tmp_path / ".git").mkdir()
    warning = checkout_warning(AgentSettings())
    assert warning is not None and str(tmp_path / "var") in warning and "VOICE_AGENT_HOME" in warning
    assert checkout_warning(AgentSettings(home=tmp_path)) is None  # set on purpose
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    assert checkout_warning(AgentSettings()) is None
