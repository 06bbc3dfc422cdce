"""The zeroconf announcement, against a stand-in for the zeroconf package (nothing goes on the network)."""

from __future__ import annotations

import asyncio
import socket
import sys
import types
from typing import Any

import pytest

from agent.wyoming.advertise import SERVICE_TYPE, Advertisement


class FakeZeroconf:
    calls: list[tuple[str, Any]] = []

    async def async_register_service(self, info: Any) -> None:
        self.calls.append(("register", info))

    async def async_unregister_service(self, info: Any) -> None:
        self.calls.append(("unregister", info))

    async def async_close(self) -> None:
        self.calls.append(("close", None))


class FakeInfo:
    def __init__(self, type_: str, name: str, addresses: list[bytes], port: int) -> None:
        self.type, self.name, self.addresses, self.port = type_, name, addresses, port


def test_registers_the_wyoming_service_and_withdraws_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("zeroconf.asyncio")
    fake.AsyncZeroconf = FakeZeroconf  # type: ignore[attr-defined]
    fake.AsyncServiceInfo = FakeInfo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeroconf.asyncio", fake)
    FakeZeroconf.calls = []
    advert = Advertisement("192.0.2.7", 10210, name="voice-agent-test")

    async def run() -> None:
        await advert.start()
        await advert.close()
        await advert.close()  # twice is harmless

    asyncio.run(run())
    assert [c[0] for c in FakeZeroconf.calls] == ["register", "unregister", "close"]
    info = FakeZeroconf.calls[0][1]
    assert (info.type, info.name, info.port) == (SERVICE_TYPE, f"voice-agent-test.{SERVICE_TYPE}", 10210)
    assert info.addresses == [socket.inet_aton("192.0.2.7")]
