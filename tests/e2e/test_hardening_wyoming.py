"""The Wyoming door against a hostile neighbour (issue 18, items 2 and 5), through the real agent
and real sockets: announced lengths past the cap, malformed events, a header line without end, a
slow header, more connections than the door takes, and a client that leaves while it is spoken to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
from wyoming.error import Error
from wyoming.event import Event, async_read_event
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from tests.conftest import AgentProcess, Probe, make_home
from tests.hostile import nested
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

TIMEOUT = 30.0
MB = 1024 * 1024
MAX_BODY_BYTES = 256 * 1024  # agent.wyoming.wire.MAX_BODY_BYTES, as a client knows it: from the README
MAX_HEADER_BYTES = 64 * 1024  # agent.wyoming.wire.MAX_HEADER_BYTES
MAX_CONNECTIONS = 64  # agent.wyoming.limits.MAX_CONNECTIONS


@dataclass
class Agent:
    process: AgentProcess
    port: int

    def log_lines(self, text: str) -> list[str]:
        return [line for line in self.process.log.read_text(errors="replace").splitlines() if text in line]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[Agent]:
    home = make_home(tmp_path_factory.mktemp("home"))
    port = free_port()
    process = AgentProcess(home, broker.port, {"VOICE_AGENT_WYOMING_URI": f"tcp://127.0.0.1:{port}"}).start()
    process.wait_log("ready", timeout=60)
    yield Agent(process, port)
    process.stop()


@dataclass
class Answer:
    """What the agent wrote back until it closed the connection, and the client's own address."""

    events: list[Event]
    peer: str
    reset: bool = False  # closed with a reset (the agent closed with our bytes unread)


async def answers(reader: asyncio.StreamReader) -> tuple[list[Event], bool]:
    """Events until the agent closes; fails the test (TimeoutError) if it never does."""
    events: list[Event] = []
    try:
        async with asyncio.timeout(TIMEOUT):
            while (event := await async_read_event(reader)) is not None:
                events.append(event)
    except ConnectionError:  # reset (or our own write failing) once the agent closed
        return events, True
    return events, False


def send(port: int, raw: bytes) -> Answer:
    async def main() -> Answer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        host, client_port = writer.get_extra_info("sockname")[:2]
        try:
            writer.write(raw)
            await writer.drain()
            events, reset = await answers(reader)
        finally:
            writer.close()
        return Answer(events, f"{host}:{client_port}", reset)

    return asyncio.run(main())


def header(document: dict[str, object]) -> bytes:
    return json.dumps(document).encode() + b"\n"


def event_with_data(kind: str, data: bytes) -> bytes:
    return header({"type": kind, "data_length": len(data)}) + data


def padded_data(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    skeleton = b'{"text": "hi", "pad": ""}'
    return skeleton[:-2] + b" " * (size - len(skeleton)) + skeleton[-2:]


def pong(port: int, raw: bytes) -> list[str]:
    """Send ``raw`` and a ping after it; the types of what comes back before the pong."""

    async def main() -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(raw + header({"type": "ping", "data": {"text": "after"}}))
            await writer.drain()
            seen = []
            async with asyncio.timeout(TIMEOUT):
                while (event := await async_read_event(reader)) is not None:
                    seen.append(event.type)
                    if event.type == "pong" and event.data.get("text") == "after":
                        return seen
            raise AssertionError(f"closed after {seen}")
        finally:
            writer.close()

    return asyncio.run(main())


def rss(agent: Agent) -> int:
    assert agent.process.process is not None
    return int(psutil.Process(agent.process.process.pid).memory_info().rss)


# -- item 2: lengths, malformed events, the header line ------------------------------------------


@pytest.mark.parametrize("field", ["data_length", "payload_length"])
def test_an_announced_length_past_the_cap_closes_before_reading_it(agent: Agent, field: str) -> None:
    async def main() -> tuple[list[Event], bool, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        sent = 0
        try:
            writer.write(header({"type": "ping", field: 10**12}))
            block = b"x" * MB
            try:
                while sent < 64 * MB:  # the issue sent 600 MB (bench/wyoming_hostile.py does)
                    writer.write(block)
                    await asyncio.wait_for(writer.drain(), TIMEOUT)
                    sent += len(block)
            except ConnectionError:
                pass  # closed while we were still sending: what the cap is for
            events, _ = await answers(reader)
        finally:
            writer.close()
        return events, sent < 64 * MB, sent

    before = rss(agent)
    events, cut_short, sent = asyncio.run(main())
    assert cut_short or not events or Error.is_type(events[0].type), events
    assert [e.type for e in events] in ([], ["error"])  # an error when it arrives before our bytes reset the connection
    if events:
        assert Error.from_event(events[0]).code == "payload_too_large"
    assert rss(agent) - before < 16 * MB, f"the agent grew by {(rss(agent) - before) / MB:.0f} MB after {sent / MB:.0f} MB"
    assert pong(agent.port, b"") == ["pong"]


@pytest.mark.parametrize("field", ["data_length", "payload_length"])
def test_a_length_exactly_at_the_cap_is_read(agent: Agent, field: str) -> None:
    body = padded_data(MAX_BODY_BYTES)
    assert len(body) == MAX_BODY_BYTES
    assert pong(agent.port, header({"type": "describe-not", field: len(body)}) + body) == ["pong"]
    over = header({"type": "ping", field: MAX_BODY_BYTES + 1}) + padded_data(MAX_BODY_BYTES + 1)
    answer = send(agent.port, over)
    assert [e.type for e in answer.events] in ([], ["error"]) and (answer.events or answer.reset), answer


MALFORMED = {
    "array header": (b"[1, 2]\n", "invalid_payload"),
    "bad JSON header": (b'{"type": "ping", \n', "invalid_json"),
    "30 000 nested brackets in the header": (nested(30000).encode() + b"\n", "invalid_json"),
    "60 000 nested brackets as data": (event_with_data("ping", nested(60000).encode()), "invalid_json"),
    "data that is not JSON": (event_with_data("ping", b"nope!"), "invalid_json"),
    "data that is a list": (event_with_data("ping", b"[1]"), "invalid_payload"),
    "a string data_length": (header({"type": "ping", "data_length": "2"}) + b"{}", "invalid_payload"),
    "a negative data_length": (header({"type": "ping", "data_length": -5}), "invalid_payload"),
    "a negative payload_length": (header({"type": "ping", "payload_length": -1}), "invalid_payload"),
    "a fractional payload_length": (header({"type": "ping", "payload_length": 1.5}) + b"x", "invalid_payload"),
    "no type": (header({"data": {}}), "invalid_payload"),
    "a type that is a number": (header({"type": 5}), "invalid_payload"),
    "data in the header that is a list": (header({"type": "ping", "data": [1]}), "invalid_payload"),
    "a 5000-digit length": (b'{"type": "ping", "data_length": ' + b"9" * 5000 + b"}\n", "invalid_json"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_event_is_an_error_a_close_and_one_line(agent: Agent, kind: str) -> None:
    raw, code = MALFORMED[kind]
    answer = send(agent.port, raw)
    assert [e.type for e in answer.events] == ["error"], answer
    assert Error.from_event(answer.events[0]).code == code, answer.events[0].data
    assert len(agent.log_lines(answer.peer)) == 1, agent.log_lines(answer.peer)
    assert "Traceback" not in agent.process.log.read_text(errors="replace")
    assert pong(agent.port, b"") == ["pong"]


def test_a_header_line_without_end_is_cut_at_its_bound(agent: Agent) -> None:
    async def main() -> Answer:
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        host, client_port = writer.get_extra_info("sockname")[:2]
        try:
            try:
                writer.write(b'{"type": "ping", "data": {"text": "' + b"a" * (8 * MB))  # no newline, ever
                await asyncio.wait_for(writer.drain(), TIMEOUT)
            except ConnectionError:
                pass
            events, reset = await answers(reader)
        finally:
            writer.close()
        return Answer(events, f"{host}:{client_port}", reset)

    answer = asyncio.run(main())
    assert [e.type for e in answer.events] in ([], ["error"]), answer
    assert len(agent.log_lines(answer.peer)) == 1, agent.log_lines(answer.peer)
    assert "header line" in agent.log_lines(answer.peer)[0]
    at_bound = b'{"type": "ping", "data": {"text": "after"}}'
    at_bound = at_bound[:-1] + b" " * (MAX_HEADER_BYTES - len(at_bound)) + b"}"
    assert len(at_bound) == MAX_HEADER_BYTES
    assert pong(agent.port, at_bound + b"\n" + header({"type": "ping"})) == ["pong"]
    assert [e.type for e in send(agent.port, at_bound + b" \n").events] in ([], ["error"])


# -- item 5: slow and idle connections, the connection cap ---------------------------------------


def test_a_slow_header_is_closed(agent: Agent) -> None:
    async def main() -> Answer:
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        host, client_port = writer.get_extra_info("sockname")[:2]
        try:
            writer.write(b'{"type": "pi')  # and nothing more
            await writer.drain()
            events, reset = await answers(reader)
        finally:
            writer.close()
        return Answer(events, f"{host}:{client_port}", reset)

    answer = asyncio.run(main())
    assert [e.type for e in answer.events] in ([], ["error"]), answer
    assert len(agent.log_lines(answer.peer)) == 1, agent.log_lines(answer.peer)


def test_connections_past_the_cap_are_closed_and_the_held_ones_still_answer(agent: Agent) -> None:
    async def main() -> None:
        held = []
        try:
            for _ in range(MAX_CONNECTIONS):
                reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
                held.append((reader, writer))
                writer.write(header({"type": "ping"}))
            for reader, _ in held:  # each one is served, so each one counts
                assert (await asyncio.wait_for(async_read_event(reader), TIMEOUT)).type == "pong"  # type: ignore[union-attr]
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
                try:
                    events, _ = await answers(reader)
                finally:
                    writer.close()
                assert [e.type for e in events] == ["error"] and Error.from_event(events[0]).code == "busy"
            reader, writer = held[0]
            writer.write(header({"type": "ping"}))
            assert (await asyncio.wait_for(async_read_event(reader), TIMEOUT)).type == "pong"  # type: ignore[union-attr]
        finally:
            for _, writer in held:
                writer.close()

    asyncio.run(main())
    lines = [line for line in agent.process.log.read_text().splitlines() if "connections open" in line]
    assert 1 <= len(lines) <= 2, lines  # one line per interval, not one per refused connection
    for _ in range(50):  # the agent sees the closes as they come: a new connection gets in again
        try:
            assert pong(agent.port, b"") == ["pong"]
            return
        except AssertionError:
            continue
    raise AssertionError("no connection was taken after the held ones closed")


class LowDescriptorAgent(AgentProcess):
    """The agent under a low descriptor limit, as under systemd's default ``LimitNOFILE``, only lower:
    the hard limit too, or the agent raises its soft limit at start (``raise_open_file_limit``)."""

    NOFILE = 256
    nofile = (NOFILE, NOFILE)


def test_more_sockets_than_descriptors_leave_the_agent_serving(tmp_path, broker: Mosquitto) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    process = LowDescriptorAgent(make_home(tmp_path / "home"), broker.port, {"VOICE_AGENT_WYOMING_URI": f"tcp://127.0.0.1:{port}"}).start()
    probe = Probe(broker.port)
    try:
        process.wait_log("ready", timeout=60)

        async def flood() -> None:
            held = []
            try:
                for _ in range(LowDescriptorAgent.NOFILE + 50):
                    held.append(await asyncio.open_connection("127.0.0.1", port))
                await asyncio.sleep(2)  # the agent accepts (or fails to) meanwhile
                answer = probe.request("default", "config", {}, timeout=TIMEOUT)
                assert answer["status"] == "ok", answer
            finally:
                for _, writer in held:
                    writer.close()

        asyncio.run(flood())
        agent = Agent(process, port)
        for _ in range(50):
            try:
                assert pong(port, b"") == ["pong"]
                break
            except (AssertionError, ConnectionError):
                continue
        else:
            raise AssertionError("the Wyoming door never answered again")
    finally:
        probe.close()
        process.stop()
    log = process.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert len(agent.log_lines("out of system resource")) <= 1
    assert len(log.splitlines()) < 200, f"{len(log.splitlines())} log lines"


# -- item 2: a client that leaves is not spoken to any more ---------------------------------------

SENTENCES = " ".join(f"This is sentence number {n} of a long answer that nobody will hear." for n in range(1, 41))


def test_a_client_that_leaves_mid_synthesize_stops_the_speech(agent: Agent, probe: Probe) -> None:
    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        writer.write(header({"type": "synthesize", "data": Synthesize(text=SENTENCES).event().data}))
        await writer.drain()
        first = await asyncio.wait_for(async_read_event(reader), TIMEOUT)
        assert first is not None and first.type == "audio-start", first
        writer.close()  # gone, with 39 sentences to go

    mark = probe.mark()
    asyncio.run(main())
    name, payload = probe.wait_for(
        lambda t, p: t in ("voice/default/event/speak.finished", "voice/default/event/speak.failed"), 120, after=mark
    )
    event = json.loads(payload)["data"]
    assert name.endswith("speak.failed") and event["code"] == "client_gone", event


def test_a_client_that_leaves_mid_stream_gets_no_more_sentences(agent: Agent, probe: Probe) -> None:
    async def main() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        host, client_port = writer.get_extra_info("sockname")[:2]
        for event in (SynthesizeStart().event(), SynthesizeChunk(text=SENTENCES).event(), SynthesizeStop().event()):
            writer.write(header({"type": event.type, "data": event.data}))
        await writer.drain()
        first = await asyncio.wait_for(async_read_event(reader), TIMEOUT)
        assert first is not None and first.type == "audio-start", first
        writer.close()  # gone, with 39 sentences to go
        return f"{host}:{client_port}"

    mark = probe.mark()
    peer = asyncio.run(main())
    agent.process.wait_log(f"Wyoming client {peer} has gone", timeout=120)
    # what the agent still had to say is dropped: a request after it is the next one spoken
    before_next = probe.mark()
    next_request = header({"type": "synthesize", "data": Synthesize(text="Next, please.").event().data})
    assert pong(agent.port, next_request).count("audio-stop") == 1
    probe.wait_for(lambda t, p: t == "voice/default/event/speak.finished", 60, after=before_next)
    started = [t for t, _, _ in probe.seen[mark:before_next] if t == "voice/default/event/speak.started"]
    assert len(started) <= 2, f"{len(started)} sentences were spoken for a client that had gone"
