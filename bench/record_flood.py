"""Does a flood of recordings slow speech down? Speak latency while record messages pour in,
against an idle agent. Run by hand: `.venv/bin/python bench/record_flood.py`.

The recordings are scored in the agent's low-priority analysis process (one thread, nice 10);
this measures whether that isolation holds on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.speech import OWNER_RATE, owner, wav, with_silence  # noqa: E402

SPEAK_TEXT = "The washing machine has finished, and the laundry is ready to hang up."
RECORD_TEXT = "This is a recording that arrives while the agent is also asked to speak."


def speak_latencies(probe: Probe, rounds: int, tag: str) -> list[float]:
    latencies = []
    for i in range(rounds):
        start = time.perf_counter()
        response = probe.request("default", "speak", {"id": f"{tag}-{i}", "text": f"{SPEAK_TEXT} Number {i}."})
        assert response["status"] == "ok", response
        latencies.append((time.perf_counter() - start) * 1000)
        time.sleep(0.2)
    return latencies


def flood(probe: Probe, payload: bytes, stop: threading.Event, sent: list[int]) -> None:
    while not stop.is_set():
        probe.publish("bench/default/request/record", payload)
        sent[0] += 1
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        home = make_home(root / "home")
        write_json(home / "profiles" / "default" / "etc" / "voice.json", {"cache": {"enabled": False}})
        agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "bench"}).start()
        try:
            agent.wait_log("ready")
            probe = Probe(broker.port, base="bench")
            recording = wav(with_silence(owner(RECORD_TEXT), OWNER_RATE), OWNER_RATE)
            warm = probe.request("default", "record", recording, timeout=180)  # starts the analysis process
            assert warm["status"] == "ok", warm
            speak_latencies(probe, 3, "warm")
            idle = speak_latencies(probe, args.rounds, "idle")
            stop, sent = threading.Event(), [0]
            flooder = Probe(broker.port, base="bench")
            thread = threading.Thread(target=flood, args=(flooder, recording, stop, sent), daemon=True)
            thread.start()
            time.sleep(2)
            busy = speak_latencies(probe, args.rounds, "busy")
            stop.set()
            thread.join()
            responses = probe.responses("default", "record")
            scored = sum(1 for r in responses if r["status"] == "ok")
            refused = sum(1 for r in responses if r.get("code") == "busy")
            flooder.close()
            probe.close()
        finally:
            agent.stop()
            broker.stop()
    ratio = statistics.median(busy) / statistics.median(idle)
    print(json.dumps({
        "speak_idle_ms_median": round(statistics.median(idle), 1),
        "speak_idle_ms_max": round(max(idle), 1),
        "speak_during_flood_ms_median": round(statistics.median(busy), 1),
        "speak_during_flood_ms_max": round(max(busy), 1),
        "ratio_of_medians": round(ratio, 2),
        "recordings_sent": sent[0],
        "recordings_scored": scored,
        "recordings_refused_busy": refused,
        "recording_seconds_each": round(len(owner(RECORD_TEXT)) / OWNER_RATE + 1.0, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
