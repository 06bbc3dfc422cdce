"""Look-alikes of this site and of a loopback name (agent/http/guard.py): a page whose origin
only contains or begins with the agent's host and port is another site, and a host name that
only ends in ``localhost`` or begins with ``127.0.0.1`` is no loopback name (DNS rebinding)."""

from __future__ import annotations

import pytest

from agent.http.guard import is_loopback_name
from tests.agent.http.test_guard import code, through, tokenless, with_token


@pytest.mark.parametrize("origin", [
    "http://127.0.0.1:4321.evil.example", "http://x127.0.0.1:4321", "http://127.0.0.1:43210", "http://127.0.0.1:432",
    "http://127.0.0.1:4321/", "http://127.0.0.1", "127.0.0.1:4321",
])
def test_an_origin_that_only_resembles_this_site_is_refused(origin: str) -> None:
    for door in (tokenless(), with_token()):
        assert code(through(door.origin, Origin=origin)) == "forbidden", origin


def test_an_origin_that_only_resembles_the_proxys_host_is_refused() -> None:
    for origin in ("https://voice.example.evil", "https://evilvoice.example", "https://voice.exampl"):
        assert code(through(with_token().origin, Origin=origin, **{"X-Forwarded-Host": "voice.example"})) == "forbidden"


@pytest.mark.parametrize("host", ["evillocalhost", "localhost.", "localhostx", "127.0.0.1.evil.example",
                                  "127.0.0.1evil", "x127.0.0.1", "[::1].evil", "::2"])
def test_a_host_that_only_resembles_a_loopback_name_is_not_one(host: str) -> None:
    assert is_loopback_name(host) is False


@pytest.mark.parametrize("host", ["evillocalhost:4321", "127.0.0.1.evil.example:4321", "localhost.evil.example:4321"])
def test_a_rebinding_host_that_resembles_a_loopback_name_is_refused(host: str) -> None:
    assert code(through(tokenless().origin, Host=host)) == "forbidden"
