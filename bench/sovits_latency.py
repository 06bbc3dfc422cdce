#!/usr/bin/env python3
"""GPT-SoVITS bench: what does the agent add on top of calling the same server directly?

Starts a private Mosquitto, the fake GPT-SoVITS server (tests/fake_sovits.py, a separate
process that answers in a few ms, so the agent's own costs are not drowned by inference) and
the real agent, then, round by round and interleaved, times on loopback:

- direct: one keep-alive HTTP POST /tts with the exact body the agent sends, read to the end
  (and, streaming, until the first PCM after the WAV header);
- provider: the agent's GPT-SoVITS provider in this process (reference lookup, request, WAV parsing);
- agent: an MQTT speak request -> its response (the audio is published before the response),
  cache off; streaming: -> the first audio/<id>/0 message.

Added latency = median of the per-round differences agent - direct. Goal: <= 10 ms per request.
Run by hand: ``.venv/bin/python bench/sovits_latency.py --repeat 30``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.texts import TEXTS  # noqa: E402
from providers.base import ProviderContext
from providers.sovits.client import build_request
from providers.sovits.config import SovitsSettings
from providers.sovits.engine import SovitsProvider
from providers.sovits.reference import find_reference
from tests.conftest import AgentProcess, make_home, write_json
from tests.mosquitto import Mosquitto, free_port
from tests.providers.sovits.test_supervisor import wait_until

BASE = "svbench"
PROFILE = "bench"
GOAL_MS = 10.0


class BenchClient:
    """Publishes requests and notes when each topic first arrives (perf_counter)."""

    def __init__(self, port: int) -> None:
        self.arrived: dict[str, float] = {}
        self.payloads: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"svbench-{uuid.uuid4().hex[:6]}")
        self._client.on_message = self._on_message
        connected = threading.Event()

        def on_connect(client: mqtt.Client, *_: object) -> None:
            client.subscribe(f"{BASE}/{PROFILE}/#", qos=1)
            connected.set()

        self._client.on_connect = on_connect
        self._client.connect("127.0.0.1", port)
        # paho leaves Nagle on: our PUBACK for the last message, not yet ACKed by the broker's
        # delayed ACK, would hold the next request back for ~40 ms when requests follow quickly.
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client.loop_start()
        connected.wait(10)
        time.sleep(0.2)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        with self._cond:
            self.arrived.setdefault(msg.topic, now)
            self.payloads[msg.topic] = bytes(msg.payload)
            self._cond.notify_all()

    def speak(self, text: str, stream: bool) -> tuple[float, float, dict[str, object]]:
        """(ms to first audio, ms to response, response data)."""
        request_id = uuid.uuid4().hex[:10]
        audio = f"{BASE}/{PROFILE}/audio/{request_id}" + ("/0" if stream else "")
        response_topic = f"{BASE}/{PROFILE}/response/speak"
        start = time.perf_counter()
        self._client.publish(f"{BASE}/{PROFILE}/request/speak", json.dumps({"id": request_id, "text": text, "stream": stream}), qos=1)
        deadline = time.monotonic() + 60
        with self._cond:
            while True:
                payload = self.payloads.get(response_topic)
                if payload and json.loads(payload).get("id") == request_id and audio in self.arrived:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer to {request_id}")
                self._cond.wait(1)
            done = self.arrived.pop(response_topic)
            self.payloads.pop(response_topic)
            first = self.arrived[audio]
        data = json.loads(payload)
        if data.get("status") != "ok":
            raise RuntimeError(f"speak failed: {data}")
        return (first - start) * 1000, (done - start) * 1000, data["data"]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def direct(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, float, int]:
    """(ms to first PCM, ms to the end, bytes) for one POST /tts on a kept-alive connection."""
    start = time.perf_counter()
    conn.request("POST", "/tts", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    first = 0.0
    size = 0
    while True:
        piece = response.read1(256 * 1024)
        if not piece:
            break
        size += len(piece)
        if not first and size > 44:
            first = time.perf_counter()
    end = time.perf_counter()
    if response.status != 200:
        raise RuntimeError(f"direct call failed: HTTP {response.status}")
    return (first - start) * 1000, (end - start) * 1000, size


def write_reference(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rate = 16000
    t = np.arange(rate * 5) / rate
    voice = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((140, 280, 420, 560))) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    with wave.open(str(folder / "reference.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((voice / np.abs(voice).max() * 0.5 * 32767).astype(np.int16).tobytes())
    (folder / "reference.txt").write_text("A steady voice for the benchmark.", encoding="utf-8")


def stats(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.1f} / {ordered[int(0.9 * (len(ordered) - 1))]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sovits-bench-"))
    broker = Mosquitto(work / "mosquitto").start()
    port = free_port()
    with open(work / "fake.log", "wb") as fake_log:  # the child keeps its own handle
        fake = subprocess.Popen([sys.executable, str(REPO / "tests" / "fake_sovits.py"), "-a", "127.0.0.1", "-p", str(port)],
                                stdout=fake_log, stderr=subprocess.STDOUT)
    agent: AgentProcess | None = None
    client: BenchClient | None = None
    provider = SovitsProvider()
    try:
        home = make_home(work / "home", profiles=(PROFILE,))
        sovits = {"serverUrl": f"http://127.0.0.1:{port}", "textLang": "en", "promptLang": "en"}
        write_json(home / "profiles" / PROFILE / "etc" / "voice.json",
                   {"tts": {"provider": "sovits", "sovits": sovits}, "cache": {"enabled": False}})
        profile_dir = home / "profiles" / PROFILE
        write_reference(profile_dir / "out" / "voices" / "sovits-reference" / "default")
        ctx = ProviderContext(PROFILE, profile_dir, (profile_dir / "out" / "voices", home / "out" / "voices"))
        from providers.sovits.supervisor import answers

        wait_until("the fake server answers", lambda: answers("127.0.0.1", port))
        agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": BASE}).start()
        agent.wait_log("ready", timeout=60)
        client = BenchClient(broker.port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        settings = SovitsSettings.model_validate(sovits)
        reference = find_reference(ctx, "default")
        rows: list[str] = []
        verdicts: list[bool] = []
        for text_name, text in TEXTS.items():
            body = json.dumps(build_request(text, settings, str(reference.audio), reference.transcript).body).encode()
            samples: dict[str, list[float]] = {k: [] for k in ("direct", "direct_first", "provider", "agent", "agent_first", "agent_server")}
            audio_seconds = 0.0
            for round_number in range(args.warmup + args.repeat):
                d_first, d_full, _ = direct(conn, body)
                t0 = time.perf_counter()
                chunks = list(provider.synthesize(text, settings, ctx))
                p_full = (time.perf_counter() - t0) * 1000
                _, a_full, data = client.speak(text, stream=False)
                a_first, _, _ = client.speak(text, stream=True)
                if round_number < args.warmup:
                    continue
                audio_seconds = sum(c.seconds for c in chunks)
                for key, value in (("direct", d_full), ("direct_first", d_first), ("provider", p_full), ("agent", a_full),
                                   ("agent_first", a_first), ("agent_server", float(data["latency_ms"]))):  # type: ignore[arg-type]
                    samples[key].append(value)
            added = [a - d for a, d in zip(samples["agent"], samples["direct"], strict=True)]
            added_first = [a - d for a, d in zip(samples["agent_first"], samples["direct_first"], strict=True)]
            added_provider = [p - d for p, d in zip(samples["provider"], samples["direct"], strict=True)]
            ok = statistics.median(added) <= GOAL_MS
            verdicts.append(ok)
            rows.append(
                f"| {text_name} ({audio_seconds:.1f} s audio) | {stats(samples['direct'])} | {stats(samples['provider'])} "
                f"| {stats(samples['agent'])} | {stats(samples['agent_server'])} | {statistics.median(added_provider):.1f} "
                f"| {statistics.median(added):.1f} "
                f"| {stats(samples['direct_first'])} | {stats(samples['agent_first'])} | {statistics.median(added_first):.1f} "
                f"| {'**yes**' if ok else '**no**'} |"
            )
        load = os.getloadavg()
        print(f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; Python {platform.python_version()}")
        print(f"- Command: `.venv/bin/python bench/sovits_latency.py --repeat {args.repeat}`; load average at end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
        print(f"- {args.repeat} measured rounds after {args.warmup} warm-up rounds, interleaved; cells 'median / p90' in ms;"
              " fake server streamingMode 1 (the default), cache off\n")
        print("| text | direct HTTP | provider in-process | agent over MQTT | agent's own `latency_ms` | provider - direct "
              "| **agent - direct** | direct first PCM | agent first audio (stream) | agent - direct, first | goal <= 10 ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        return 0 if all(verdicts) else 1
    finally:
        if client is not None:
            client.close()
        provider.close()
        if agent is not None:
            agent.stop()
        fake.terminate()
        fake.wait(10)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
