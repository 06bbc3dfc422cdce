"""Texts within the character limit whose audio is long (issue 18, item 4), against the running
agent with its default settings (cache off), over MQTT and over Wyoming: the answer, the audio
it made, the agent's RSS after a plain speak ("before"), at its peak while answering (sampled
every 20 ms) and after the answer and one more plain speak ("after"; "kept" is after minus
before), and the time to the answer. Each text runs in an agent of its own, so one text's arena is not the next one's baseline.
Run by hand: `.venv/bin/python bench/long_texts_bench.py [mqtt|wyoming ...]`; it prints the
rows of bench/RESULTS.md "Hostile input" for these texts."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from wyoming.audio import AudioChunk, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.error import Error  # noqa: E402
from wyoming.tts import Synthesize  # noqa: E402

from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.hostile import PeakRss, cyrillic, han, long_word, short_words  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402

MB = 1024 * 1024
TEXTS = {"5000 Chinese characters": han, "5000 Cyrillic letters": cyrillic, "1000 short words": short_words,
         "one 5000-letter word": long_word}
TIMEOUT_S = 3000.0  # before the cap, the Chinese text took minutes


def over_mqtt(probe: Probe, text: str) -> tuple[str, float]:
    response = probe.request("default", "speak", {"text": text}, timeout=TIMEOUT_S)
    if response["status"] == "ok":
        return "ok", float(response["data"]["audio_seconds"])
    return f"`{response['code']}`", 0.0


async def over_wyoming(port: int, text: str) -> tuple[str, float]:
    samples, rate = 0, 1
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        while True:
            event = await asyncio.wait_for(client.read_event(), TIMEOUT_S)
            if event is None:
                return "closed", samples / rate
            if AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                samples, rate = samples + chunk.samples, chunk.rate
            elif Error.is_type(event.type):
                return f"`{Error.from_event(event).code}`", samples / rate
            elif AudioStop.is_type(event.type):
                return "ok", samples / rate


def run(door: str, name: str, root: Path, broker: Mosquitto) -> str:
    home = make_home(root / f"{door}-{name}".replace(" ", "-"))
    write_json(home / "profiles" / "default" / "etc" / "voice.json", {"cache": {"enabled": False}})
    wyoming = free_port()
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "bench",
                                             "VOICE_AGENT_WYOMING_URI": f"tcp://127.0.0.1:{wyoming}"}).start()
    try:
        agent.wait_log("ready")
        assert agent.process is not None
        probe = Probe(broker.port, base="bench")
        assert probe.request("default", "speak", {"text": "Still here."})["status"] == "ok"
        text = TEXTS[name]()
        with PeakRss(agent.process.pid) as rss:
            before = rss.now()
            start = time.perf_counter()
            answer, seconds = over_mqtt(probe, text) if door == "MQTT" else asyncio.run(over_wyoming(wyoming, text))
            took = time.perf_counter() - start
        # the worker trims the heap after answering: a plain speak answered says it has
        assert probe.request("default", "speak", {"text": "Still here."})["status"] == "ok"
        after = rss.now()
        probe.close()
    finally:
        agent.stop()
    return (f"| {name} over {door} | {answer}, {seconds:.0f} s of audio | {before / MB:.0f} MB | {rss.peak / MB:.0f} MB "
            f"| {after / MB:.0f} MB | {(after - before) / MB:+.0f} MB | {took:.1f} s |")


def main() -> None:
    doors = [d.lower() for d in sys.argv[1:]] or ["mqtt", "wyoming"]
    print("| text | answer | RSS before | peak | after | kept | time to answer |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        try:
            for door in ("MQTT", "Wyoming"):
                if door.lower() in doors:
                    for name in TEXTS:
                        print(run(door, name, root, broker), flush=True)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
