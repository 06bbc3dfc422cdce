"""The zeroconf announcement, against a stand-in for the zeroconf package (nothing goes on the network)."""

from __future__ import annotations

import asyncio
import logging
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


def test_registers_the_wyoming_service_and_withdraws_it(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
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

    with caplog.at_level(logging.INFO, "agent.wyoming.advertise"):
        asyncio.run(run())
    assert [c[0] for c in FakeZeroconf.calls] == ["register", "unregister", "close"]
    info = FakeZeroconf.calls[0][1]
    assert FakeZeroconf.calls[1][1] is info  # the same service withdrawn
    assert caplog.messages == ["Wyoming server announced over zeroconf as voice-agent-test at 192.0.2.7:10210"]
    assert (info.type, info.name, info.port) == (SERVICE_TYPE, f"voice-agent-test.{SERVICE_TYPE}", 10210)
    assert info.addresses == [socket.inet_aton("192.0.2.7")]


# -- each rule (issue 23) ---------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "announced"), [
    ("", "192.0.2.99"), ("0.0.0.0", "192.0.2.99"), ("::", "192.0.2.99"),  # every interface: the outward one
    ("192.0.2.7", "192.0.2.7"), ("127.0.0.1", "127.0.0.1"), ("0.0.0.1", "0.0.0.1"),
])
def test_a_wildcard_host_is_announced_as_the_outward_address(monkeypatch: pytest.MonkeyPatch, host: str,
                                                             announced: str) -> None:
    monkeypatch.setattr("agent.wyoming.advertise.outward_address", lambda: "192.0.2.99")
    assert Advertisement(host, 10200).host == announced


def test_the_default_name_is_the_machine_s_short_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "kitchen.lan.example")
    assert Advertisement("192.0.2.7", 1).name == "voice-agent-kitchen"
    assert Advertisement("192.0.2.7", 1, name="").name == "voice-agent-kitchen"
    assert Advertisement("192.0.2.7", 1, name="mine").name == "mine"
    assert Advertisement("192.0.2.7", 10210).port == 10210


def test_close_before_start_does_nothing_and_a_failed_withdrawal_still_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(FakeZeroconf):
        async def async_unregister_service(self, info: Any) -> None:
            self.calls.append(("unregister", info))
            raise OSError("network down")

    fake = types.ModuleType("zeroconf.asyncio")
    fake.AsyncZeroconf = Refusing  # type: ignore[attr-defined]
    fake.AsyncServiceInfo = FakeInfo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeroconf.asyncio", fake)
    FakeZeroconf.calls = []
    advert = Advertisement("192.0.2.7", 10210, name="x")

    async def run() -> None:
        await advert.close()
        assert FakeZeroconf.calls == []
        await advert.start()
        with pytest.raises(OSError):
            await advert.close()
        await advert.close()  # closed already: nothing more

    asyncio.run(run())
    assert [c[0] for c in FakeZeroconf.calls] == ["register", "unregister", "close"]


def test_the_outward_address_is_where_a_multicast_datagram_would_leave_from(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[Any, ...]] = []

    class Probe:
        def __init__(self, family: int, kind: int) -> None:
            made.append(("socket", family, kind))

        def __enter__(self) -> Probe:
            return self

        def __exit__(self, *exc: object) -> None:
            made.append(("closed",))

        def connect(self, address: tuple[str, int]) -> None:
            made.append(("connect", address))

        def getsockname(self) -> tuple[str, int]:
            return ("192.0.2.44", 40000)

    monkeypatch.setattr("agent.wyoming.advertise.socket.socket", Probe)
    from agent.wyoming.advertise import outward_address

    assert outward_address() == "192.0.2.44"
    assert made == [("socket", socket.AF_INET, socket.SOCK_DGRAM), ("connect", ("224.0.0.251", 1)), ("closed",)]
