"""The server's thread in-process: it listens, answers, reports itself dead once stopped, and says
why when it cannot listen."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.ping import Ping, Pong

from agent.settings import AgentSettings
from agent.wyoming.server import WyomingServer
from tests.mosquitto import free_port


def stand_in_core() -> Any:
    layout = SimpleNamespace(names=lambda: ["default"], exists=lambda name: name == "default")
    return SimpleNamespace(commands={"speak": None, "voices": None}, layout=layout)


def test_serves_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri=f"tcp://127.0.0.1:{port}"))
    server.start()
    try:
        assert server.alive

        async def ping() -> str | None:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Ping(text="hi").event())
                event = await asyncio.wait_for(client.read_event(), 10)
                assert event is not None
                return Pong.from_event(event).text

        assert asyncio.run(ping()) == "hi"
    finally:
        server.stop()
    assert not server.alive


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("tcp://127.0.0.1:{taken}", "cannot listen on tcp://127.0.0.1:{taken}: address already in use"),
        ("tcp://127.0.0.1", "A port must be specified"),
        ("stdio://", "must be tcp://<host>:<port> or unix://<path>"),
        ("http://127.0.0.1:1", "must be tcp://<host>:<port> or unix://<path>"),
        ("unix:///no/such/folder/wyoming.sock", "cannot listen on unix:///no/such/folder/wyoming.sock: no such file or directory"),
    ],
)
def test_says_why_it_cannot_listen(tmp_path: Path, uri: str, reason: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri=uri.format(taken=port)))
        with pytest.raises(RuntimeError) as refused:
            server.start()
    assert reason.format(taken=port) in str(refused.value)
    assert not server.alive
