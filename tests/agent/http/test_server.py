"""The HTTP door as the agent starts it (its own thread and loop): the settings reach it (the cap
answers one more connection 503 busy, the idle timeout closes a silent one), and a failed accept
on its loop is one line, not a traceback each."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

import pytest

from agent.http.server import HttpEdge
from agent.settings import AgentSettings
from tests.agent.http.fake_core import fake_core
from tests.mosquitto import free_port


def edge(**settings: object) -> tuple[HttpEdge, int]:
    port = free_port()
    door = HttpEdge(fake_core(), AgentSettings(http_port=port, **settings))  # type: ignore[arg-type]
    door.start()
    return door, port


def test_the_cap_setting_reaches_the_door() -> None:
    door, port = edge(http_max_connections=1)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as first:
            first.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert first.recv(65536).startswith(b"HTTP/1.1 200")  # held (keep-alive)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as more:
                assert more.recv(65536).startswith(b"HTTP/1.1 503")
    finally:
        door.stop()


def test_the_idle_timeout_reaches_the_door_and_failed_accepts_are_one_line(caplog: pytest.LogCaptureFixture) -> None:
    door, port = edge(http_idle_timeout=0.3)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            assert silent.recv(65536) == b""  # closed by the door
        loop = door._loop
        failure = {"message": "socket.accept() out of system resource",
                   "exception": OSError(errno.EMFILE, "Too many open files")}
        with caplog.at_level(logging.WARNING, "agent.http.server"):
            for _ in range(50):
                loop.call_soon_threadsafe(loop.call_exception_handler, failure)
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)  # after them
    finally:
        door.stop()
    lines = [r for r in caplog.records if "cannot accept" in r.getMessage()]
    assert [r.getMessage() for r in lines] == ["HTTP API cannot accept connections: Too many open files"]
    assert lines[0].exc_info is None
