"""The record and train paths' bounds at full size (issue 18, items 6-8): 40 recordings of 32 MiB
at once, a flood of 2000 stream frames of 256 KiB, 100 `train` requests, and a corrupt
`voice-agent.db` in one of two profiles. Run by hand: `.venv/bin/python bench/record_bounds_bench.py`;
it prints the figures of bench/RESULTS.md "Hostile input" for these items.

RSS is sampled every 20 ms: the agent alone, and the agent with its children (the analysis
process). The agent is warmed first (one kept recording), as in bench/hostile_bench.py."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.hostile import PeakRss  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.speech import OWNER_RATE, owner, wav, with_silence  # noqa: E402

MB = 1024 * 1024
SPEECH = "The weather today is sunny with a light breeze coming from the west."
TRAINER = {"counting": "tests.fake_trainer:CountingTrainer"}


def big_recording() -> bytes:
    """A WAV just under 32 MiB that passes the header checks: 600 s of quiet noise at 27 kHz."""
    rate, seconds = 27000, 600
    noise = np.random.default_rng(7).normal(0, 0.01, rate * seconds).astype(np.float32)
    return wav(noise, rate)


def wait_answers(probe: Probe, command: str, already: int, count: int, timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(probe.responses("default", command)) - already < count:
        time.sleep(0.05)
    return probe.responses("default", command)[already:]


def record_flood(probe: Probe, pid: int, count: int = 40) -> str:
    payload = big_recording()
    assert len(payload) <= 32 * MB, len(payload)
    already = len(probe.responses("default", "record"))
    with PeakRss(pid) as rss, PeakRss(pid, children=False) as alone:
        before, before_agent = rss.peak, alone.peak
        start = time.perf_counter()
        for n in range(count):
            probe.client.publish("bench/default/request/record", payload, qos=1)
        answers = wait_answers(probe, "record", already, count)
        seconds = time.perf_counter() - start
    time.sleep(2)  # the worker's turn after its last recording
    after = PeakRss(pid, children=False).now()
    codes: dict[str, int] = {}
    for answer in answers:
        key = "ok" if answer["status"] == "ok" else answer["code"]
        codes[key] = codes.get(key, 0) + 1
    return (f"{count} recordings of {len(payload) / MB:.1f} MiB: {len(answers)} answered {codes}; agent "
            f"{before_agent / MB:.0f} -> peak {alone.peak / MB:.0f} MB; agent+children {before / MB:.0f} -> peak "
            f"{rss.peak / MB:.0f} MB; agent after {after / MB:.0f} MB; {seconds:.1f} s")


def stream_flood(probe: Probe, pid: int, count: int = 2000) -> str:
    frame = np.random.default_rng(3).integers(-3000, 3000, 128 * 1024, dtype=np.int16).tobytes()  # 256 KiB
    probe.publish("bench/default/stream/flood/start", json.dumps({"sample_rate": 16000}))
    mark = probe.mark()
    with PeakRss(pid) as rss, PeakRss(pid, children=False) as alone:
        before, before_agent = rss.peak, alone.peak
        start = time.perf_counter()
        for n in range(count):
            probe.client.publish("bench/default/stream/flood/frame", frame, qos=1)
        probe.publish("bench/default/stream/flood/stop", b"")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # the stream thread has worked through its inbox
            with probe._lock:
                if any(t == "bench/default/event/stream.stopped" for t, _, _ in probe.seen[mark:]):
                    break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
    with probe._lock:
        dropped = sum(1 for t, p, _ in probe.seen[mark:]
                      if t == "bench/default/event/stream.error" and b"backed up" in p)
    return (f"{count} frames of 256 KiB: {dropped} `stream.error` (backed up); agent {before_agent / MB:.0f} -> "
            f"peak {alone.peak / MB:.0f} MB; agent+children {before / MB:.0f} -> peak {rss.peak / MB:.0f} MB; "
            f"{seconds:.1f} s")


def train_flood(probe: Probe, home: Path, count: int = 100) -> str:
    answers = [probe.request("default", "train", {"provider": "counting", "speaker": f"s{n}", "when": "idle"})
               for n in range(count)]  # one after the other: the command queue's own bound is not what is measured
    codes: dict[str, int] = {}
    for answer in answers:
        key = "ok" if answer["status"] == "ok" else answer["code"]
        codes[key] = codes.get(key, 0) + 1
    with sqlite3.connect(home / "out" / "jobs.db") as db:
        queued = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
    return f"{count} train requests: {codes}; queued jobs after: {queued}"


def corrupt_db(root: Path, broker: Mosquitto) -> str:
    home = make_home(root / "corrupt", profiles=("default", "kitchen"))
    samples = home / "profiles" / "kitchen" / "out" / "voices" / "samples"
    samples.mkdir(parents=True)
    (samples / "20260101-120000-abcdef.wav").write_bytes(wav(with_silence(owner(SPEECH), OWNER_RATE), OWNER_RATE))
    (home / "profiles" / "kitchen" / "out" / "voice-agent.db").write_bytes(b"this is not a database\n" * 512)
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "corrupt"}).start()
    probe = Probe(broker.port, base="corrupt")
    try:
        deadline = time.monotonic() + 60
        assert agent.process is not None
        while time.monotonic() < deadline and agent.process.poll() is None and "ready: profiles" not in agent.log.read_text():
            time.sleep(0.1)
        if agent.process.poll() is not None:
            return f"corrupt voice-agent.db in kitchen: agent exit {agent.process.returncode}, every profile down"
        speaks = probe.request("default", "speak", {"text": "Other profile."}, timeout=60)["status"]
        records = probe.request("default", "record", wav(with_silence(owner(SPEECH), OWNER_RATE), OWNER_RATE),
                                timeout=180)["status"]
        kitchen = probe.request("kitchen", "speak", {"text": "Kitchen."}, timeout=60)["status"]
        reimported = probe.event("kitchen", "sample.reimported", timeout=240)["data"]
        aside = sorted(p.name for p in (home / "profiles" / "kitchen" / "out").glob("voice-agent.db.corrupt-*"))
        return (f"corrupt voice-agent.db in kitchen: agent running; default speak {speaks}, record {records}; "
                f"kitchen speak {kitchen}, its WAV re-scored (kept {len(reimported['kept'])}); kept aside: {aside}")
    finally:
        probe.close()
        agent.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["stream", "train", "record", "corrupt"], action="append",
                        help="run only these measurements (repeatable); all when not given")
    only = set(parser.parse_args().only or ["stream", "train", "record", "corrupt"])
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        home = make_home(root / "home")
        write_json(home / "profiles" / "default" / "etc" / "voice.json", {"cache": {"enabled": False}})
        agent = AgentProcess(home, broker.port, {
            "VOICE_AGENT_BASE_TOPIC": "bench", "VOICE_AGENT_EXTRA_TRAINERS": json.dumps(TRAINER),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }).start()
        try:
            agent.wait_log("ready")
            probe = Probe(broker.port, base="bench")
            assert probe.request("default", "record", wav(with_silence(owner(SPEECH), OWNER_RATE), OWNER_RATE),
                                 timeout=180)["status"] == "ok"
            assert agent.process is not None
            pid = agent.process.pid
            measures = {"stream": lambda: stream_flood(probe, pid), "train": lambda: train_flood(probe, home),
                        "record": lambda: record_flood(probe, pid)}
            for name, measure in measures.items():
                if name not in only:
                    continue
                lines.append(measure())
                print(lines[-1], flush=True)
            assert probe.request("default", "speak", {"text": "Still here."})["status"] == "ok"
            probe.close()
        finally:
            agent.stop()
        if "corrupt" in only:
            lines.append(corrupt_db(root, broker))
            print(lines[-1], flush=True)
        broker.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                            check=False).stdout
    print(f"\ncommit {commit.strip()}, {os.cpu_count()} CPUs")
    for line in lines:
        print(f"- {line}")


if __name__ == "__main__":
    main()
