"""The Wyoming server's rules (agent/wyoming/server.py) that the listening tests do not reach:
zeroconf only when asked and only for a tcp:// URI with a port, announced at the URI's host and
port and withdrawn at stop, a failed announcement only logged; the thread's name; the start and
listen lines; the reason a listen fails, in words."""

from __future__ import annotations

import errno
import logging
import threading
from pathlib import Path


import pytest

from agent.settings import AgentSettings
from agent.wyoming import advertise
from agent.wyoming.server import WyomingServer, _reason
from tests.agent.wyoming.test_server import stand_in_core
from tests.mosquitto import free_port


class FakeAdvert:
    made: list[FakeAdvert] = []
    fail: Exception | None = None

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.started, self.closed = host, port, False, False
        FakeAdvert.made.append(self)

    async def start(self) -> None:
        if FakeAdvert.fail is not None:
            raise FakeAdvert.fail
        self.started = True

    async def close(self) -> None:
        self.closed = True


@pytest.fixture()
def adverts(monkeypatch: pytest.MonkeyPatch) -> list[FakeAdvert]:
    FakeAdvert.made, FakeAdvert.fail = [], None
    monkeypatch.setattr(advertise, "Advertisement", FakeAdvert)
    return FakeAdvert.made


def serve(tmp_path: Path, uri: str, zeroconf: bool) -> tuple[WyomingServer, str]:
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri=uri, wyoming_zeroconf=zeroconf))
    server.start()
    names = [t.name for t in threading.enumerate()]
    server.stop()
    assert not server.alive
    return server, " ".join(names)


def test_a_tcp_server_is_announced_at_its_host_and_port_and_withdrawn(tmp_path: Path, adverts: list[FakeAdvert],
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with caplog.at_level(logging.INFO, "agent.wyoming.server"):
        _, threads = serve(tmp_path, f"tcp://127.0.0.1:{port}", True)
    ((advert,),) = [adverts]
    assert (advert.host, advert.port, advert.started, advert.closed) == ("127.0.0.1", port, True, True)
    assert "wyoming" in threads.split()
    assert f"Wyoming TTS server listening on tcp://127.0.0.1:{port}" in [r.getMessage() for r in caplog.records]


def test_no_announcement_unless_asked(tmp_path: Path, adverts: list[FakeAdvert]) -> None:
    serve(tmp_path, f"tcp://127.0.0.1:{free_port()}", False)
    assert adverts == []


def test_a_unix_socket_is_not_announced_and_says_so(tmp_path: Path, adverts: list[FakeAdvert],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    uri = f"unix://{tmp_path}/w.sock"
    with caplog.at_level(logging.WARNING, "agent.wyoming.server"):
        serve(tmp_path, uri, True)
    assert adverts == []
    assert [r.getMessage() for r in caplog.records] == [f"zeroconf needs a tcp:// Wyoming URI; {uri} is not announced"]


def test_a_failed_announcement_is_a_warning_and_the_server_serves(tmp_path: Path, adverts: list[FakeAdvert],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    FakeAdvert.fail = OSError("no multicast here")
    with caplog.at_level(logging.WARNING, "agent.wyoming.server"):
        serve(tmp_path, f"tcp://127.0.0.1:{free_port()}", True)
    assert [r.getMessage() for r in caplog.records] == [
        "could not announce the Wyoming server over zeroconf: no multicast here"]
    assert adverts[0].closed is False


def test_a_listen_failure_reads_as_words() -> None:
    assert _reason(OSError(errno.EADDRINUSE, "x")) == "address already in use"
    assert _reason(OSError("plain message")) == "plain message"
    assert _reason(OSError(0, "zero")) == "[Errno 0] zero"


def test_a_bad_uri_is_refused_in_words(tmp_path: Path) -> None:
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri="http://127.0.0.1:1"))
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert str(refused.value) == "VOICE_AGENT_WYOMING_URI 'http://127.0.0.1:1' must be tcp://<host>:<port> or unix://<path>"
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri="tcp://127.0.0.1"))
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert str(refused.value).startswith("VOICE_AGENT_WYOMING_URI 'tcp://127.0.0.1' is not usable: ")


def test_stopping_a_server_never_started_does_nothing(tmp_path: Path) -> None:
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path))
    server.stop()
    assert not server.alive


