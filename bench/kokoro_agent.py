"""Kokoro through the agent: real-time factor of a speak request over MQTT (the agent's response
time over the audio's length), against the same provider in this process, interleaved round by
round. Issue 12 measured 0.78-0.80 through the agent against 0.42-0.50 in-process, because the
first-use timing had picked the slower model; this checks that the agent now runs what the
bench says is fastest. Run by hand: `.venv/bin/python bench/kokoro_agent.py --rounds 5`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

TEXT = ("Hello from the voice agent. This is Kokoro speaking English on a small home server. "
        "The kitchen lights are off now.")
SECTION = {"voice": "jm_kumo", "langCode": "a"}  # as bench/kokoro_speed.py


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from providers.kokoro.config import KokoroSettings
    from providers.kokoro.engine import KokoroProvider

    load = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory(prefix="kokoro-agent-") as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        home = make_home(root / "home")
        write_json(home / "profiles" / "default" / "etc" / "voice.json",
                   {"tts": {"provider": "kokoro", "kokoro": SECTION}, "cache": {"enabled": False}})
        agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "kbench"}).start()
        try:
            agent.wait_log("ready", timeout=120)
            probe = Probe(broker.port, base="kbench")
            started = time.perf_counter()
            first = probe.request("default", "speak", {"text": TEXT}, timeout=900)  # prepares the model
            assert first["status"] == "ok" and first["data"]["provider"] == "kokoro", first
            first_use = time.perf_counter() - started
            picked = re.findall(r"Kokoro: (\S+) is faster here \(([^)]*)\)", agent.log.read_text())
            from tests.contexts import home_context

            provider = KokoroProvider()
            settings, ctx = KokoroSettings.model_validate(SECTION), home_context(home)
            provider.preload(settings, ctx)
            through, direct = [], []
            for _ in range(args.rounds):
                data = probe.request("default", "speak", {"text": TEXT}, timeout=300)["data"]
                through.append((data["latency_ms"] / 1000, data["audio_seconds"]))
                begin = time.perf_counter()
                pcm = b"".join(chunk.pcm for chunk in provider.synthesize(TEXT, settings, ctx))
                direct.append((time.perf_counter() - begin, len(pcm) / 2 / 24000))
            provider.close()
            probe.close()
        finally:
            agent.stop()
            broker.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                            check=False).stdout.strip()
    print(f"- commit {commit}, {os.cpu_count()} CPUs, load at start {load}; {args.rounds} rounds, interleaved")
    print(f"- agent's first request (model assembled, folded, both variants timed): {first_use:.1f} s; "
          f"picked: {picked[-1][0] + ' (' + picked[-1][1] + ')' if picked else 'variant from an earlier run'}")
    print("")
    print("| path | seconds (median) | audio seconds | RTF (median of rounds) |")
    print("|---|---|---|---|")
    for name, rows in (("through the agent (MQTT request -> response)", through), ("provider in-process", direct)):
        rtf = statistics.median(s / a for s, a in rows)
        print(f"| {name} | {statistics.median(s for s, _ in rows):.2f} | {statistics.median(a for _, a in rows):.2f} "
              f"| {rtf:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
