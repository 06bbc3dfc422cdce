"""The HTTP audio routes against a flood of large uploads (issue 18, round two), through the real
agent and real sockets: a recording's bytes are held in the record budget
(VOICE_AGENT_RECORD_QUEUE_BYTES) from its Content-Length, before its body is read, so uploads
that do not fit are told ``busy`` without a byte of their bodies, and the agent does not hold
them (40 parallel 30 MiB uploads cost it about 1.2 GB before). A client that leaves gives its
bytes back."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import AgentProcess
from tests.e2e.test_hardening_http import http_agent, port_of
from tests.hostile import PeakRss
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

MB = 1024 * 1024
RECORD = "/api/profiles/default/commands/record"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = http_agent(tmp_path_factory.mktemp("hard-http-audio"), broker,
                         VOICE_AGENT_RECORD_QUEUE_BYTES=str(MB)).start()
    process.wait_log("ready")
    yield process
    process.stop()


def announce(port: int, path: str = RECORD, length: int = 30 * MB) -> socket.socket:
    """A connection that has sent a recording's head, and not a byte of its body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\n"
                  f"Content-Length: {length}\r\n\r\n").encode())
    return sock


def until_admitted(port: int) -> None:
    """Until a small recording is no longer ``busy`` (what a client that left held is given back as
    the agent notices it left)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = requests.post(f"http://127.0.0.1:{port}{RECORD}", data=b"not a wav", timeout=60,
                               headers={"Content-Type": "audio/wav"})
        if answer.status_code != 429:
            assert answer.json()["code"] == "invalid_audio", answer.text
            return
        time.sleep(0.1)
    raise AssertionError("the bytes of a client that left were never given back")


def test_uploads_that_do_not_fit_are_busy_before_their_bodies_are_sent(agent: AgentProcess) -> None:
    """Six connections announce 30 MiB recordings each and send no body: one is let in (it waits
    for its body), the other five are told busy at once. The first leaves: its bytes come back."""
    port = port_of(agent)
    until_admitted(port)
    socks = [announce(port) for _ in range(6)]
    try:
        waiting: list[socket.socket] = []
        for sock in socks:
            sock.settimeout(2)
            try:
                answer = sock.recv(65536)
            except TimeoutError:  # let in: it waits for a body that never comes
                waiting.append(sock)
                continue
            assert answer.startswith(b"HTTP/1.1 429") and b'"busy"' in answer, answer[:300]
        assert len(waiting) == 1
    finally:
        for sock in socks:
            sock.close()
    until_admitted(port)
    assert "Traceback" not in agent.log.read_text()


def test_parallel_large_uploads_do_not_cost_their_size(agent: AgentProcess) -> None:
    """Twelve 30 MiB recordings sent at once with a 1 MiB record budget: those that do not fit are
    busy and the agent does not hold their bodies (it held them all before: 12 x 30 MiB, twice)."""
    assert agent.process is not None
    until_admitted(port_of(agent))
    body = b"\x01" * (30 * MB)
    answers: list[requests.Response | Exception] = []

    def send() -> None:
        try:
            answers.append(requests.post(f"http://127.0.0.1:{port_of(agent)}{RECORD}", data=body, timeout=120,
                                         headers={"Content-Type": "audio/wav"}))
        except requests.ConnectionError as exc:  # answered and closed before the client finished sending
            answers.append(exc)

    with PeakRss(agent.process.pid, children=False) as rss:
        before = rss.now()
        senders = [threading.Thread(target=send) for _ in range(12)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
    codes = [a.json()["code"] for a in answers if not isinstance(a, Exception)]
    assert set(codes) <= {"busy", "invalid_audio"} and codes.count("busy") >= 6, codes
    assert (rss.peak - before) / MB < 160, f"+{(rss.peak - before) / MB:.0f} MB"
    until_admitted(port_of(agent))
    assert "Traceback" not in agent.log.read_text()
