"""The Wyoming door against a hostile neighbour (issue 18, items 2 and 5), with the agent's memory:
for each attack the peak resident memory of the agent (sampled every 20 ms) before, while and
after, what the agent answered, how many bytes it took before closing, and its log lines.

Run by hand: `.venv/bin/python bench/wyoming_hostile.py [--megabytes 600]`; it prints a table for
bench/RESULTS.md "Hostile input". The agent runs under a descriptor limit of 1024 (systemd's
default ``LimitNOFILE``), everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wyoming.event import async_read_event  # noqa: E402

from tests.conftest import AgentProcess, Probe, make_home  # noqa: E402
from tests.hostile import PeakRss, nested  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402

MB = 1024 * 1024
NOFILE = 1024
TIMEOUT = 60.0


class LimitedAgent(AgentProcess):
    """The agent under systemd's default descriptor limit."""

    def start(self) -> "LimitedAgent":
        handle = open(self.log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent", "run"], cwd=self.home, env=self.env, stdout=handle, stderr=handle,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE)),
        )
        AgentProcess.running.add(self)
        return self


async def answer_of(reader: asyncio.StreamReader) -> str:
    """The agent's events until it closes: ``error code``s, or what else it sent."""
    seen: list[str] = []
    try:
        async with asyncio.timeout(TIMEOUT):
            while (event := await async_read_event(reader)) is not None:
                seen.append(f"`{event.data['code']}`" if event.type == "error" else event.type)
    except ConnectionError:
        seen.append("reset")
    except TimeoutError:
        seen.append(f"still open after {TIMEOUT:.0f} s")
    return ", ".join(seen) or "closed"


async def flood(port: int, head: bytes, megabytes: int) -> str:
    """``head``, then up to ``megabytes`` MB: how much the agent took, and what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent, block = 0, b"x" * MB
    try:
        writer.write(head)
        try:
            while sent < megabytes * MB:
                writer.write(block)
                await asyncio.wait_for(writer.drain(), TIMEOUT)
                sent += len(block)
        except (ConnectionError, TimeoutError):
            pass
        return f"{await answer_of(reader)}; {sent / MB:.0f} MB sent"
    finally:
        writer.close()


async def idle_sockets(port: int, count: int, probe: Probe) -> str:
    """``count`` connections held open; how many the agent keeps, and whether MQTT still answers."""
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    try:
        await asyncio.sleep(3)

        async def closed_by_agent(reader: asyncio.StreamReader) -> bool:
            try:
                await asyncio.wait_for(reader.read(), 2.0)  # to the end: only if the agent closed it
                return True
            except TimeoutError:
                return False
            except ConnectionError:
                return True

        closed = sum(await asyncio.gather(*(closed_by_agent(reader) for reader, _ in held)))
        answer = await asyncio.to_thread(probe.request, "default", "config", {}, TIMEOUT)
        return f"{count - closed} held, {closed} closed by the agent; MQTT `config`: {answer['status']}"
    finally:
        for _, writer in held:
            writer.close()


async def malformed(port: int) -> str:
    kinds = {
        "array": b"[1, 2]\n",
        "bad JSON": b'{"type": "ping", \n',
        "60 000 brackets": b'{"type": "ping", "data_length": 120000}\n' + nested(60000).encode(),
        "string length": b'{"type": "ping", "data_length": "2"}\n{}',
        "negative length": b'{"type": "ping", "data_length": -5}\n',
    }
    answers = []
    for name, raw in kinds.items():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        answers.append(f"{name}: {await answer_of(reader)}")
        writer.close()
    return "; ".join(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=600, help="bytes sent after a huge announced length (600)")
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        port = free_port()
        agent = LimitedAgent(make_home(root / "home"), broker.port, {"VOICE_AGENT_WYOMING_URI": f"tcp://127.0.0.1:{port}"})
        agent.start()
        probe = None
        try:
            agent.wait_log("ready", timeout=120)
            probe = Probe(broker.port)
            assert agent.process is not None

            def measure(name: str, attack: Callable[[], Coroutine[Any, Any, str]]) -> None:
                lines = len(agent.log.read_text(errors="replace").splitlines())
                with PeakRss(agent.process.pid) as rss:  # type: ignore[union-attr]
                    before = rss.now()
                    result = asyncio.run(attack())
                    time.sleep(0.5)
                after = rss.now()
                logged = len(agent.log.read_text(errors="replace").splitlines()) - lines
                rows.append((name, result, before / MB, rss.peak / MB, after / MB, logged))
                print(f"{name}: {result}; {before / MB:.0f} -> peak {rss.peak / MB:.0f} -> {after / MB:.0f} MB, "
                      f"{logged} log lines", flush=True)

            big = args.megabytes
            measure(f"`data_length` 10^12, then {big} MB", lambda: flood(port, b'{"type": "ping", "data_length": 1000000000000}\n', big))
            measure(f"`payload_length` 10^12, then {big} MB", lambda: flood(port, b'{"type": "ping", "payload_length": 1000000000000}\n', big))
            measure(f"a header line of {big} MB without newline", lambda: flood(port, b'{"type": "ping", "data": {"text": "', big))
            measure("five malformed events", lambda: malformed(port))
            measure("1100 idle sockets (LimitNOFILE 1024)", lambda: idle_sockets(port, 1100, probe))  # type: ignore[arg-type]
            assert asyncio.run(malformed(port))  # the door still answers afterwards
        finally:
            if probe is not None:
                probe.close()
            agent.stop()
            broker.stop()
        log = agent.log.read_text(errors="replace")
        print(f"\nagent log: {len(log.splitlines())} lines, {log.count('Traceback')} tracebacks")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False).stdout
    print(f"\ncommit {commit.strip()}, {os.cpu_count()} CPUs\n")
    print("| attack | answer | RSS before | peak | after | log lines |")
    print("|---|---|---|---|---|---|")
    for name, result, before, peak, after, logged in rows:
        print(f"| {name} | {result} | {before:.0f} MB | {peak:.0f} MB | {after:.0f} MB | {logged} |")


if __name__ == "__main__":
    main()
