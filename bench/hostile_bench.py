"""Hostile input against the running agent and a private Mosquitto (issue 13): for each attack,
the peak resident memory of the agent and its children (sampled every 20 ms) before and while it
answers, and the time to the answer. Run by hand: `.venv/bin/python bench/hostile_bench.py`;
it prints the table of bench/RESULTS.md "Hostile input".

The agent is warmed first (one kept recording, one speak), so "before" is an agent at work, with
its analysis process loaded, not a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.hostile import PeakRss, channel_bomb, huge_number, long_word, nested, rate_bomb  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.speech import OWNER_RATE, owner, wav, with_silence  # noqa: E402

MB = 1024 * 1024
SITE = "porch"
SPEECH = "The weather today is sunny with a light breeze coming from the west."


def outcome(response: dict) -> str:
    return "ok" if response["status"] == "ok" else f"`{response['code']}`"


def main() -> None:
    rows: list[tuple[str, str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        home = make_home(root / "home")
        write_json(home / "profiles" / "default" / "etc" / "voice.json", {"cache": {"enabled": False}})
        agent = AgentProcess(home, broker.port, {
            "VOICE_AGENT_BASE_TOPIC": "bench", "VOICE_AGENT_HERMES_SITES": json.dumps({SITE: "default"}),
        }).start()
        try:
            agent.wait_log("ready")
            probe = Probe(broker.port, base="bench")
            assert probe.request("default", "record", wav(with_silence(owner(SPEECH), OWNER_RATE), OWNER_RATE),
                                 timeout=180)["status"] == "ok"
            assert probe.request("default", "speak", {"text": "Warm."})["status"] == "ok"
            assert agent.process is not None
            pid = agent.process.pid

            def measure(name: str, attack: Callable[[], str]) -> None:
                with PeakRss(pid) as rss:
                    before = rss.now()
                    start = time.perf_counter()
                    result = attack()
                    seconds = time.perf_counter() - start
                after = rss.now()
                rows.append((name, result, before / MB, rss.peak / MB, after / MB, seconds))
                print(f"{name}: {result} {before / MB:.0f} -> peak {rss.peak / MB:.0f} -> {after / MB:.0f} MB, "
                      f"{seconds:.2f} s", flush=True)

            def record(payload: bytes) -> Callable[[], str]:
                return lambda: outcome(probe.request("default", "record", payload, timeout=120))

            def speak(payload: dict | str) -> Callable[[], str]:
                return lambda: outcome(probe.request("default", "speak", payload, timeout=180))

            def hermes(payload: bytes) -> Callable[[], str]:
                def attack() -> str:
                    mark = probe.mark()
                    probe.client.publish(f"hermes/audioServer/{SITE}/audioFrame", payload, qos=1).wait_for_publish(5)
                    error = probe.event("default", "stream.error", after=mark)["data"]["error"]
                    return "`stream.error` (" + error.split(":")[0].split(" dropped")[0] + ")"
                return attack

            def config_bomb() -> str:
                path = home / "profiles" / "default" / "etc" / "voice.json"
                good = path.read_text()
                mark = probe.mark()
                path.write_text('{"tts": ' + nested() + "}")
                probe.event("default", "config.invalid", after=mark)
                mark = probe.mark()
                path.write_text(good)
                probe.event("default", "config.reloaded", after=mark)
                return "`config.invalid`, last good kept"

            def flood(command: str, count: int, payload: Callable[[int], dict]) -> Callable[[], str]:
                def attack() -> str:
                    already = len(probe.responses("default", command))
                    for n in range(count):
                        probe.client.publish(f"bench/default/request/{command}",
                                             json.dumps({"id": f"{command}-{n}", **payload(n)}), qos=1)
                    deadline = time.monotonic() + 600
                    while time.monotonic() < deadline and len(probe.responses("default", command)) - already < count:
                        time.sleep(0.05)
                    answers = probe.responses("default", command)[already:]
                    busy = sum(1 for a in answers if a.get("code") == "busy")
                    return f"{len(answers)} answered, {busy} `busy`"
                return attack

            measure("record: FLAC 655 350 Hz, 60 s (142 KB)", record(rate_bomb()))
            measure("record: FLAC 8 ch 192 kHz 590 s (938 KB)", record(channel_bomb()))
            measure("Hermes audioFrame: the 938 KB FLAC", hermes(channel_bomb()))
            measure("Hermes audioFrame: the 142 KB 655 350 Hz FLAC", hermes(rate_bomb()))
            measure("speak: one 5000-letter word", speak({"text": long_word()}))
            measure("speak: 30 000 nested brackets", speak(nested()))
            measure("speak: a 5000-digit number", speak(huge_number()))
            measure("voice.json: 30 000 nested brackets", config_bomb)
            measure("300 × samples.report at once", flood("samples.report", 300, lambda n: {}))
            measure("40 × samples.export to new speakers", flood("samples.export", 40,
                                                                 lambda n: {"target": "rvc", "speaker": f"s{n}"}))
            datasets = home / "profiles" / "default" / "out" / "voices" / "rvc-reference"
            size = subprocess.run(["du", "-sk", str(datasets)], capture_output=True, text=True, check=False).stdout.split()[0]
            print(f"rvc-reference after the export flood: {len(list(datasets.iterdir()))} folders, {size} KB")
            assert probe.request("default", "speak", {"text": "Still here."})["status"] == "ok"
            probe.close()
        finally:
            agent.stop()
            broker.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False).stdout
    print(f"\ncommit {commit.strip()}, {os.cpu_count()} CPUs\n")
    print("| attack | answer | RSS before | peak while answering | after | time to answer |")
    print("|---|---|---|---|---|---|")
    for name, result, before, peak, after, seconds in rows:
        print(f"| {name} | {result} | {before:.0f} MB | {peak:.0f} MB | {after:.0f} MB | {seconds:.2f} s |")


if __name__ == "__main__":
    main()


# -- issue 18: the HTTP door ------------------------------------------------------------------------
# Run by hand, on the agent of this checkout or another (PYTHONPATH=/path/to/checkout for "before"):
#   .venv/bin/python -c 'from bench.hostile_bench import http_door; http_door()'
# Connections stay on 127.0.0.1, bounded in count and time.


def http_bodies(port: int, pid: int, parallel: int = 40, size: int = 30 * MB, chunked: bool = False) -> str:
    """``parallel`` bodies of ``size`` bytes at once to /api/tts (with a Content-Length, or chunked):
    the agent's peak RSS growth while it answers, and the answers."""
    import threading

    import requests

    body = b" " * size
    answers: list[str] = []

    def pieces() -> object:
        for start in range(0, size, 256 * 1024):
            yield body[start:start + 256 * 1024]

    def send() -> None:
        try:
            answer = requests.post(f"http://127.0.0.1:{port}/api/tts", data=pieces() if chunked else body,
                                   headers={"Content-Type": "application/json"}, timeout=300)
            answers.append(str(answer.status_code))
        except requests.ConnectionError:
            answers.append("reset")

    with PeakRss(pid) as rss:
        before = rss.now()
        senders = [threading.Thread(target=send) for _ in range(parallel)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
    kinds = ", ".join(f"{answers.count(a)} × {a}" for a in sorted(set(answers)))
    return f"+{(rss.peak - before) / MB:.0f} MB peak ({before / MB:.0f} -> {rss.peak / MB:.0f} MB); {kinds}"


def idle_sockets(broker: Mosquitto, root: Path, count: int = 1100, open_files: int = 1024) -> str:
    """``count`` idle sockets (half with a head that never ends) against an agent allowed
    ``open_files`` descriptors, as under systemd's default: whether HTTP and a speak over MQTT still
    answer, and what the agent logged (bytes, tracebacks)."""
    import resource
    import socket

    import requests

    from tests.mosquitto import free_port

    port = free_port()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))
    try:
        agent = AgentProcess(make_home(root), broker.port, {
            "VOICE_AGENT_BASE_TOPIC": "bench-idle", "VOICE_AGENT_HTTP_ENABLED": "true",
            "VOICE_AGENT_HTTP_PORT": str(port),
        }).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    held: list[socket.socket] = []
    try:
        agent.wait_log("ready")
        probe = Probe(broker.port, base="bench-idle")  # before the sockets: paho's select() wants descriptors < 1024
        size_before = agent.log.stat().st_size
        for n in range(count):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                continue
            if n % 2:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            held.append(sock)
        try:
            http = str(requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code)
        except requests.RequestException as exc:
            http = type(exc).__name__
        speak = probe.request("default", "speak", {"text": "Still speaking."}, timeout=60)
        probe.close()
        assert agent.process is not None
        fds = len(os.listdir(f"/proc/{agent.process.pid}/fd"))
        time.sleep(2)  # what the accept loop writes meanwhile
        log = agent.log.read_text(errors="replace")[size_before:]
        return (f"{len(held)} connected; HTTP during: {http}; speak: {outcome(speak)}; agent descriptors {fds}; "
                f"log +{len(log.encode()) / 1024:.0f} KB, {log.count('Traceback')} tracebacks")
    finally:
        for sock in held:
            sock.close()
        agent.stop()


def http_door() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        try:
            from tests.mosquitto import free_port

            port = free_port()
            agent = AgentProcess(make_home(root / "home"), broker.port, {
                "VOICE_AGENT_BASE_TOPIC": "bench-http", "VOICE_AGENT_HTTP_ENABLED": "true",
                "VOICE_AGENT_HTTP_PORT": str(port),
            }).start()
            try:
                agent.wait_log("ready")
                assert agent.process is not None
                print("40 × 30 MiB to /api/tts (Content-Length):", http_bodies(port, agent.process.pid), flush=True)
                print("40 × 30 MiB to /api/tts (chunked):", http_bodies(port, agent.process.pid, chunked=True),
                      flush=True)
            finally:
                agent.stop()
            print("1100 idle sockets, 1024 open files:", idle_sockets(broker, root / "idle"), flush=True)
        finally:
            broker.stop()
