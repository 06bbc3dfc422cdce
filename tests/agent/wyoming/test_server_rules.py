"""The Wyoming server's rules (agent/wyoming/server.py) that the listening tests do not reach:
zeroconf only when asked and only for a tcp:// URI with a port, announced at the URI's host and
port and withdrawn at stop, a failed announcement only logged; the thread's name; the start and
listen lines; the reason a listen fails, in words."""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
import threading
from pathlib import Path


import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Info
from wyoming.tts import Synthesize, SynthesizeVoice

from agent.settings import AgentSettings
from agent.wyoming import advertise
from agent.wyoming.server import WyomingServer, _reason
from tests.agent.wyoming.test_server import stand_in_core
from tests.mosquitto import free_port


class FakeAdvert:
    made: list[FakeAdvert] = []
    fail: Exception | None = None
    fail_close: Exception | None = None

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.started, self.closed = host, port, False, False
        FakeAdvert.made.append(self)

    async def start(self) -> None:
        if FakeAdvert.fail is not None:
            raise FakeAdvert.fail
        self.started = True

    async def close(self) -> None:
        self.closed = True
        if FakeAdvert.fail_close is not None:
            raise FakeAdvert.fail_close


@pytest.fixture()
def adverts(monkeypatch: pytest.MonkeyPatch) -> list[FakeAdvert]:
    FakeAdvert.made, FakeAdvert.fail, FakeAdvert.fail_close = [], None, None
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




def test_an_unusual_errno_reads_as_words_too() -> None:
    assert _reason(OSError(errno.EPERM, "x")) == "operation not permitted"


def test_a_crash_before_listening_is_the_reason_start_gives(tmp_path: Path) -> None:
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path))

    async def crash() -> None:
        raise ValueError("boom")

    server._serve = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert str(refused.value) == "Wyoming server failed to start: ValueError: boom"


def test_a_server_that_never_listens_is_refused_after_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.wyoming import server as module

    monkeypatch.setattr(module, "START_TIMEOUT", 0.05)
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri="tcp://127.0.0.1:1"))

    async def slow() -> None:
        await asyncio.sleep(0.3)

    server._serve = slow  # type: ignore[method-assign]
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert str(refused.value) == "Wyoming server did not start listening on tcp://127.0.0.1:1 within 0 s"


def test_without_the_library_the_reason_says_which_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wyoming.server", None)
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path))
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert str(refused.value).startswith("the Wyoming door needs the wyoming extra: pip install 'voice-agent[wyoming]' (")


def test_the_connections_see_the_profiles_and_their_names(tmp_path: Path) -> None:
    port = free_port()
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri=f"tcp://127.0.0.1:{port}"))
    server.start()

    async def ask(event: Event) -> Event:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(event)
            answer = await asyncio.wait_for(client.read_event(), 10)
            assert answer is not None
            return answer

    try:
        info = asyncio.run(ask(Event("describe")))
        assert [v.name for v in Info.from_event(info).tts[0].voices] == ["default/"]
        refused = asyncio.run(ask(Synthesize(text="Hi.", voice=SynthesizeVoice(name="nobody/")).event()))
        assert refused.data["code"] == "unknown_profile"
    finally:
        server.stop()


def test_a_failed_accept_is_one_line_naming_the_door(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = WyomingServer(stand_in_core(), AgentSettings(home=tmp_path, wyoming_uri=f"tcp://127.0.0.1:{free_port()}"))
    server.start()

    async def fail_an_accept() -> None:
        asyncio.get_running_loop().call_exception_handler(
            {"message": "socket.accept() out of system resource", "exception": OSError(errno.EMFILE, "Too many open files")})

    try:
        with caplog.at_level(logging.WARNING, "agent.wyoming.server"):
            assert server._loop is not None
            asyncio.run_coroutine_threadsafe(fail_an_accept(), server._loop).result(10)
    finally:
        server.stop()
    assert [r.getMessage() for r in caplog.records if r.name == "agent.wyoming.server"] == [
        "Wyoming server cannot accept connections: Too many open files"]


def test_a_crash_after_listening_is_logged(tmp_path: Path, adverts: list[FakeAdvert],
                                           caplog: pytest.LogCaptureFixture) -> None:
    FakeAdvert.fail_close = RuntimeError("zeroconf gone")
    with caplog.at_level(logging.ERROR, "agent.wyoming.server"):
        serve(tmp_path, f"tcp://127.0.0.1:{free_port()}", True)
    (record,) = caplog.records
    assert record.getMessage() == "Wyoming server stopped" and record.exc_info is not None
