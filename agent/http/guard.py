"""Who the HTTP door answers, decided before any route: what another site could make a browser
send is refused (a foreign Origin; without a token, a host name that is not a loopback name: DNS
rebinding); without a token only this machine is answered, judged by the connection's peer
address and never by a header, and not through a proxy (one on this machine would hand the API to
everyone it serves: its forwarding headers are refused); with one, every request but the page's own files carries it.
Wrong tokens are logged (a line a minute) and slowed down per peer address."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from agent.http.errors import error_response
from agent.limits import ThrottledLog

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DELAY = 1.0  # seconds between two token checks of an address that sent a wrong token
MAX_WAIT = 5.0  # a check that would wait longer for its turn is refused at once (busy)
FORGET = 60.0  # an address without a wrong token for this long is checked at once again
PEERS = 4096  # addresses remembered at most (the oldest are forgotten first)
KNOWN_WRONG = 4  # the last wrong tokens of an address, answered at once when sent again
FORWARDING = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")  # what a proxy adds


@dataclass
class Strikes:
    turn: float  # when the address's next check may run
    wrong: deque[bytes] = field(default_factory=lambda: deque(maxlen=KNOWN_WRONG))  # digests of its wrong tokens


class TokenThrottle:
    """Wrong tokens per peer address. After one, that address's token checks take turns, one per
    ``delay`` seconds, however many connections it opens; each waits for its turn on the event
    loop (nobody else waits), and one whose turn is more than ``max_wait`` away is refused at once
    without a check. A token the address was already told is wrong is refused at once without a
    turn: it tells nothing new (the page retries its requests with the same mistyped token, in
    parallel). The right token clears the address."""

    def __init__(self, delay: float = DELAY, max_wait: float = MAX_WAIT, forget: float = FORGET, peers: int = PEERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._delay = delay
        self._max_wait = max_wait
        self._forget = forget
        self._peers = peers
        self._clock = clock
        self._strikes: dict[str, Strikes] = {}

    def known_wrong(self, peer: str, token: str) -> bool:
        strikes = self._remembered(peer, self._clock())
        return strikes is not None and digest(token) in strikes.wrong

    def wait(self, peer: str) -> float | None:
        """Seconds this check must wait for its turn (its turn is taken), or None: refuse it."""
        now = self._clock()
        strikes = self._remembered(peer, now)
        if strikes is None:
            return 0.0
        turn = max(now, strikes.turn)
        if turn - now > self._max_wait:
            return None
        strikes.turn = turn + self._delay
        return turn - now

    def failed(self, peer: str, token: str) -> None:
        now = self._clock()
        strikes = self._strikes.setdefault(peer, Strikes(now))
        strikes.turn = max(strikes.turn, now + self._delay)
        strikes.wrong.append(digest(token))
        if len(self._strikes) > self._peers:
            by_age = sorted(self._strikes, key=lambda address: self._strikes[address].turn)
            for old in by_age[: len(self._strikes) - self._peers]:
                del self._strikes[old]

    def succeeded(self, peer: str) -> None:
        self._strikes.pop(peer, None)

    def _remembered(self, peer: str, now: float) -> Strikes | None:
        strikes = self._strikes.get(peer)
        if strikes is not None and now - strikes.turn >= self._forget:
            del self._strikes[peer]
            return None
        return strikes


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Guard:
    """The door's middlewares (``origin``, then ``token``), for a token or none."""

    def __init__(self, token: str | None, port: int, is_page: Callable[[str], bool],
                 throttle: TokenThrottle | None = None) -> None:
        self._token = token
        self._port = port
        self._is_page = is_page
        self._throttle = throttle or TokenThrottle()
        self._wrong = ThrottledLog(log)

    @web.middleware
    async def origin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """What a browser could be made to send by another site, and (without a token) anyone but
        this machine, are refused."""
        origin = request.headers.get("Origin")
        if origin is not None and not same_site(origin, request):
            return error_response("forbidden", f"requests from the page of {origin!r} are refused: "
                                               "open the agent's own page")
        if self._token is None and not is_loopback_address(peer_address(request)):
            return error_response("forbidden", "this agent has no VOICE_AGENT_HTTP_TOKEN: it answers this machine only")
        if self._token is None and forwarded(request):
            return error_response("forbidden", "this agent has no VOICE_AGENT_HTTP_TOKEN: set one of 24+ characters "
                                               "to serve it through a proxy")
        if self._token is None and not is_loopback_name(request.url.host or ""):
            return error_response("forbidden", f"without VOICE_AGENT_HTTP_TOKEN only loopback names are answered, not "
                                               f"{request.host!r}: open http://127.0.0.1:{self._port}/")
        return await handler(request)

    @web.middleware
    async def token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token is None or self._is_page(request.path):
            return await handler(request)
        given = given_token(request)
        if given is None:
            return unauthorized()
        peer = peer_address(request)
        if self._throttle.known_wrong(peer, given):
            self._wrong.warning("wrong HTTP token from %s", peer)
            return unauthorized()
        wait = self._throttle.wait(peer)
        if wait is None:
            self._wrong.warning("wrong HTTP token from %s: refused for now", peer)
            response = error_response("busy", "too many wrong tokens from this address: try again in a few seconds")
            response.headers["Retry-After"] = str(int(MAX_WAIT))
            return response
        if wait:
            await asyncio.sleep(wait)
        if not hmac.compare_digest(given.encode(), self._token.encode()):
            self._throttle.failed(peer, given)
            self._wrong.warning("wrong HTTP token from %s", peer)
            return unauthorized()
        self._throttle.succeeded(peer)
        return await handler(request)


def forwarded(request: web.Request) -> bool:
    """Whether a proxy passed the request on: a proxy on this machine connects from loopback and
    (nginx's default) names a loopback Host, for whoever it serves."""
    return any(name in request.headers for name in FORWARDING)


def given_token(request: web.Request) -> str | None:
    """The token the request carries: ``Authorization: Bearer``, or ``?access_token=`` (a WebSocket,
    the event stream: a browser cannot set their headers); None when it carries none."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:]
    return request.query.get("access_token")


def unauthorized() -> web.Response:
    return error_response("unauthorized", "send 'Authorization: Bearer <VOICE_AGENT_HTTP_TOKEN>' "
                                          "(or ?access_token=... for a WebSocket or the event stream)")


def same_site(origin: str, request: web.Request) -> bool:
    """The page's own origin: this host and port, by whichever scheme (a TLS proxy in front
    serves it as https) and as the proxy was asked for it (X-Forwarded-Host)."""
    host = origin.partition("://")[2]
    return host in (request.host, request.headers.get("X-Forwarded-Host"))


def peer_address(request: web.Request) -> str:
    """The address at the other end of the connection (headers cannot change it); empty when the
    connection has gone."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def is_loopback_address(address: str) -> bool:
    """127.0.0.0/8 and ::1, also as an IPv4-mapped IPv6 address (a dual-stack socket's view)."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_loopback_name(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return is_loopback_address(host.strip("[]"))
