"""Who the HTTP door answers: without a token, this machine only, judged by the connection's peer
and never by the Host header; with a token, every request but the page's files carries it; a
wrong token from an address makes that address's next checks take turns (the right one clears
it), and the turns that would wait too long are refused at once; wrong tokens are a line a minute."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from agent.http import guard
from agent.http.guard import Guard, TokenThrottle, is_loopback_address, is_loopback_name, peer_address

TOKEN = "k7Qm2xVt9LpR4sWz8NcY3bHd"


class Peer:
    """A transport whose other end is ``address``."""

    def __init__(self, address: str | None) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return (self.address, 50123) if self.address is not None else None
        return default


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="served")


def through(middleware: Any, path: str = "/api/health", peer: str | None = "127.0.0.1",
            **headers: str) -> web.StreamResponse:
    async def go() -> web.StreamResponse:
        request = make_mocked_request("GET", path, headers={"Host": "127.0.0.1:4321", **headers}, transport=Peer(peer))
        return await middleware(request, ok)  # type: ignore[no-any-return]

    return asyncio.run(go())


def answer(response: web.StreamResponse) -> dict[str, Any]:
    assert isinstance(response, web.Response) and response.text is not None
    return dict(json.loads(response.text))


def code(response: web.StreamResponse) -> str:
    assert isinstance(response, web.Response) and response.text is not None
    return "served" if response.text == "served" else str(json.loads(response.text)["code"])


def tokenless() -> Guard:
    return Guard(None, 4321, lambda path: path == "/")


def with_token(throttle: TokenThrottle | None = None) -> Guard:
    return Guard(TOKEN, 4321, lambda path: path == "/", throttle)


# -- without a token -------------------------------------------------------------------------------
@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_without_a_token_this_machine_is_answered(peer: str) -> None:
    assert code(through(tokenless().origin, peer=peer)) == "served"


@pytest.mark.parametrize("peer", ["192.0.2.7", "::ffff:192.0.2.7", "fd00::2", None])
def test_without_a_token_another_peer_is_refused_whatever_host_says(peer: str | None) -> None:
    """The Host header names loopback (a LAN client can send anything there): the peer decides."""
    assert code(through(tokenless().origin, peer=peer, Host="127.0.0.1:4321")) == "forbidden"
    assert code(through(tokenless().origin, path="/", peer=peer, Host="localhost")) == "forbidden"  # the page too


def test_without_a_token_a_foreign_host_name_is_refused_even_from_loopback() -> None:
    assert code(through(tokenless().origin, Host="evil.example:4321")) == "forbidden"  # DNS rebinding
    assert answer(through(tokenless().origin, Host="evil.example:4321"))["error"] == (
        "without VOICE_AGENT_HTTP_TOKEN only loopback names are answered, not 'evil.example:4321': "
        "open http://127.0.0.1:4321/")


@pytest.mark.parametrize(("origin", "headers", "served"), [
    ("http://127.0.0.1:4321", {}, True),
    ("https://127.0.0.1:4321", {}, True),  # a TLS proxy in front serves the page as https
    ("https://voice.example", {"X-Forwarded-Host": "voice.example"}, True),  # as the proxy was asked (with a token)
    ("http://evil.example", {}, False),
    ("http://127.0.0.1:4322", {}, False),  # another port is another site
    ("https://evil.example", {"X-Forwarded-Host": "voice.example"}, False),
    ("evil://x://127.0.0.1:4321", {}, False),  # only what follows the first scheme is the host
])
def test_a_page_of_another_site_is_refused(origin: str, headers: dict[str, str], served: bool) -> None:
    doors = (with_token(),) if headers else (tokenless(), with_token())  # a proxy needs a token (the forwarding test)
    for door in doors:
        response = through(door.origin, Origin=origin, **headers)
        assert code(response) == ("served" if served else "forbidden")
    if not served:
        assert answer(response)["error"] == f"requests from the page of {origin!r} are refused: open the agent's own page"


def test_the_peer_is_the_connections_and_none_once_it_has_gone() -> None:
    assert peer_address(make_mocked_request("GET", "/", transport=Peer("192.0.2.7"))) == "192.0.2.7"
    assert peer_address(make_mocked_request("GET", "/", transport=Peer(None))) == ""
    closed = make_mocked_request("GET", "/", transport=Peer("192.0.2.7"))
    closed.protocol.transport = None  # the connection has gone
    assert closed.transport is None and peer_address(closed) == ""

    class Gone(Peer):
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return ()

    assert peer_address(make_mocked_request("GET", "/", transport=Gone(None))) == ""


FORWARDING = ["Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP"]


@pytest.mark.parametrize("header", [*FORWARDING, "x-forwarded-for", "X-REAL-IP"])
def test_without_a_token_a_request_a_proxy_passed_on_is_refused(header: str) -> None:
    """From loopback with a loopback Host, as nginx's default proxy_pass sends it for a LAN client."""
    value = "for=192.0.2.7" if header == "Forwarded" else "192.0.2.7"
    refused = through(tokenless().origin, **{header: value})
    assert code(refused) == "forbidden"
    assert isinstance(refused, web.Response) and refused.text is not None
    message = json.loads(refused.text)["error"]
    assert "VOICE_AGENT_HTTP_TOKEN" in message and "24" in message and "proxy" in message
    assert code(through(tokenless().origin, path="/", **{header: ""})) == "forbidden"  # present, even empty; the page too


@pytest.mark.parametrize("header", ["X-Forwarded-Proto", "X-Forwarded", "Forwarded-For", "X-Client-IP"])
def test_without_a_token_other_headers_are_not_taken_for_a_proxys(header: str) -> None:
    assert code(through(tokenless().origin, **{header: "192.0.2.7"})) == "served"


@pytest.mark.parametrize("header", FORWARDING)
def test_with_a_token_a_request_a_proxy_passed_on_is_served(header: str) -> None:
    """A TLS proxy in front of an agent with a token: the token rule decides."""
    door = with_token()
    assert code(through(door.origin, **{header: "192.0.2.7"})) == "served"
    assert code(through(door.origin, peer="192.0.2.7", **{header: "192.0.2.8"})) == "served"


def test_with_a_token_the_page_behind_a_tls_proxy_passes_the_origin_rule() -> None:
    """The README's TLS proxy: the browser's origin is https and the host it asked the proxy for."""
    headers = {"X-Forwarded-Host": "voice.example.net", "X-Forwarded-For": "192.0.2.7",
               "Origin": "https://voice.example.net"}
    assert code(through(with_token().origin, **headers)) == "served"
    assert code(through(with_token().origin, **{**headers, "Origin": "https://evil.example"})) == "forbidden"


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.255.255.254", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("128.0.0.1", False), ("192.0.2.7", False), ("::ffff:192.0.2.7", False), ("fe80::1%eth0", False), ("", False),
    ("localhost", False),  # a name, not an address: a peer is always an address
])
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback_address(address) is loopback


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("app.localhost", True), ("127.0.0.1", True), ("[::1]", True),
    ("localhost.evil.example", False), ("evil.example", False), ("0.0.0.0", False),
])
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback_name(host) is loopback


# -- with a token ----------------------------------------------------------------------------------
def test_with_a_token_every_peer_needs_it_but_the_pages_files_do_not() -> None:
    door = with_token()
    for peer in ("192.0.2.7", "127.0.0.1"):
        assert code(through(door.token, peer=peer)) == "unauthorized"
        assert code(through(door.token, peer=peer, Authorization=f"Bearer {TOKEN}")) == "served"
        assert code(through(door.token, path="/", peer=peer)) == "served"
    assert code(through(door.token, path=f"/api/tts-stream?access_token={TOKEN}")) == "served"
    assert code(through(door.token, peer="192.0.2.7", Authorization=f"Bearer {TOKEN[:-1]}")) == "unauthorized"
    assert code(through(door.token, peer="192.0.2.8", Authorization=f"Bearer {TOKEN}x")) == "unauthorized"
    assert code(through(door.token, peer="192.0.2.9", Authorization=f"Basic {TOKEN}")) == "unauthorized"
    assert answer(through(door.token, peer="192.0.2.10")) == {"code": "unauthorized", "error": (
        "send 'Authorization: Bearer <VOICE_AGENT_HTTP_TOKEN>' (or ?access_token=... for a WebSocket or the event stream)")}


def test_with_a_token_a_lan_peer_gets_past_the_origin_rule_only_with_it() -> None:
    assert code(through(with_token().origin, peer="192.0.2.7")) == "served"  # the token rule decides next


def test_a_wrong_token_makes_that_address_wait_its_turn_and_the_right_one_clears_it(monkeypatch: Any) -> None:
    clock = Clock()
    throttle = TokenThrottle(delay=1.0, max_wait=5.0, clock=clock)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(guard.asyncio, "sleep", sleep)
    door = with_token(throttle)
    assert code(through(door.token, peer="192.0.2.7", Authorization="Bearer guess-1")) == "unauthorized" and waits == []
    assert code(through(door.token, peer="192.0.2.7", Authorization="Bearer guess-2")) == "unauthorized"
    assert waits == [1.0]
    assert code(through(door.token, peer="192.0.2.8", Authorization=f"Bearer {TOKEN}")) == "served"  # others: at once
    assert code(through(door.token, peer="192.0.2.7")) == "unauthorized"  # no token: nothing to guess, no turn
    assert waits == [1.0]
    assert code(through(door.token, peer="192.0.2.7", Authorization=f"Bearer {TOKEN}")) == "served"
    assert waits == [1.0, 2.0]  # the right token takes its turn too, then the address is clear
    assert code(through(door.token, peer="192.0.2.7", Authorization="Bearer guess-3")) == "unauthorized"
    assert waits == [1.0, 2.0]


def test_a_token_already_refused_is_refused_again_at_once_without_a_turn(monkeypatch: Any) -> None:
    """The page retries its parallel requests with the same mistyped token: each is told at once,
    and the right token typed next is checked at once."""
    clock = Clock()
    throttle = TokenThrottle(delay=1.0, max_wait=5.0, clock=clock)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(guard.asyncio, "sleep", sleep)
    door = with_token(throttle)
    for _ in range(10):
        assert code(through(door.token, peer="192.0.2.7", Authorization="Bearer mistyped")) == "unauthorized"
    assert waits == []
    clock.now += 1.0
    assert code(through(door.token, peer="192.0.2.7", Authorization=f"Bearer {TOKEN}")) == "served" and waits == []
    assert not throttle.known_wrong("192.0.2.7", "mistyped")  # cleared with the address
    assert not throttle.known_wrong("192.0.2.8", "mistyped")


def test_only_the_last_few_wrong_tokens_are_known() -> None:
    throttle = TokenThrottle(clock=Clock())
    for n in range(guard.KNOWN_WRONG + 1):
        throttle.failed("a", f"guess-{n}")
    assert not throttle.known_wrong("a", "guess-0")
    assert all(throttle.known_wrong("a", f"guess-{n}") for n in range(1, guard.KNOWN_WRONG + 1))


def test_turns_are_one_per_delay_and_beyond_max_wait_refused_at_once() -> None:
    clock = Clock()
    throttle = TokenThrottle(delay=1.0, max_wait=3.0, clock=clock)
    assert throttle.wait("a") == 0.0
    throttle.failed("a", "guess")
    assert [throttle.wait("a") for _ in range(4)] == [1.0, 2.0, 3.0, None]  # 3.0 = max_wait still waits
    assert throttle.wait("b") == 0.0
    clock.now += 10
    assert throttle.wait("a") == 0.0  # its turns have passed: at once, and the next one a delay later
    assert throttle.wait("a") == 1.0


def test_an_address_is_forgotten_a_while_after_its_last_turn() -> None:
    clock = Clock()
    throttle = TokenThrottle(delay=1.0, max_wait=5.0, forget=60.0, clock=clock)
    throttle.failed("a", "guess")
    clock.now += 1.0 + 59.999
    assert throttle.known_wrong("a", "guess")
    assert throttle.wait("a") == 0.0 and throttle.wait("a") == 1.0  # still remembered: the next one takes turns
    throttle.failed("b", "guess")
    clock.now += 1.0 + 60.0
    assert not throttle.known_wrong("b", "guess")
    assert throttle.wait("b") == 0.0 and throttle.wait("b") == 0.0  # forgotten: checked at once again


def test_the_addresses_kept_are_bounded_oldest_first() -> None:
    clock = Clock()
    throttle = TokenThrottle(delay=1.0, peers=3, clock=clock)
    for n, peer in enumerate("abcd"):
        clock.now = 1000.0 + n
        throttle.failed(peer, "guess")
    clock.now = 1000.5
    assert throttle.wait("a") == 0.0  # the oldest was dropped
    assert throttle.wait("b") == 1.5


def test_the_addresses_forgotten_are_the_oldest_whatever_their_names() -> None:
    clock = Clock()
    throttle = TokenThrottle(delay=1.0, peers=3, clock=clock)
    for n, peer in enumerate("dcba"):  # the oldest has the name that sorts last
        clock.now = 1000.0 + n
        throttle.failed(peer, "guess")
    clock.now = 1000.5
    assert throttle.wait("d") == 0.0  # the oldest was dropped
    assert throttle.wait("c") == 1.5 and throttle.wait("a") == 3.5


def test_wrong_tokens_are_one_log_line_a_minute(caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> None:
    async def sleep(seconds: float) -> None:
        pass

    monkeypatch.setattr(guard.asyncio, "sleep", sleep)
    door = with_token()
    with caplog.at_level(logging.WARNING, "agent.http.guard"):
        for n in range(10):
            through(door.token, peer=f"192.0.2.{n % 2}", Authorization=f"Bearer guess-{n}")
    lines = [r.getMessage() for r in caplog.records if "wrong HTTP token" in r.getMessage()]
    assert lines == ["wrong HTTP token from 192.0.2.0"]


def test_a_refused_turn_is_busy_without_a_check(monkeypatch: Any) -> None:
    clock = Clock()
    throttle = TokenThrottle(delay=1.0, max_wait=0.5, clock=clock)
    throttle.failed("192.0.2.7", "guess")
    throttle.wait("192.0.2.7")  # the next turn is taken
    response = through(with_token(throttle).token, peer="192.0.2.7", Authorization=f"Bearer {TOKEN}")
    assert code(response) == "busy" and response.status == 429 and response.headers["Retry-After"]
