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
