"""Kokoro through the agent: first audio and full synthesis of a paragraph over MQTT, from the
agent's first minute on, against kokoro-onnx as its README uses it (same model, same voices file,
same run).

One run starts a private Mosquitto and the agent (``python -m agent run``) on a fresh home whose
default profile speaks Kokoro (cache off), so nothing is assembled or prepared beforehand:

1. the first minute: from the moment the agent says ``ready``, streamed ``speak`` requests of the
   paragraph back to back until a minute after its start, each with the seconds since the start,
   first audio (publish -> ``audio/<id>/0``, the first sentence) and full audio (-> the
   ``response/speak``);
2. then interleaved rounds: the agent as above; kokoro-onnx as its README uses it
   (``Kokoro(model, voices).create(text, voice, lang="en-us")``: whole text, its own session) in
   this process, the whole text and the first sentence alone (the floor for first audio); and,
   with ``--variants``, the provider's own session on the int8 model as shipped and on the float
   model folded from it (``providers/kokoro/fold.py``), both through kokoro-onnx with the
   provider's session options, to see which variant is faster here.

Run by hand: ``.venv/bin/python bench/kokoro_agent.py --rounds 4 --variants``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import speak_bench  # noqa: E402
from bench.speak_bench import BenchClient  # noqa: E402  (a paho caller that stamps arrivals in its network thread)
from tests.conftest import AgentProcess, make_home, write_json  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

TEXTS = {
    "weather": ("The weather today is mild, with a light breeze from the west. In the afternoon, clouds will "
                "gather over the hills, and there is a chance of rain by evening. Tomorrow should be sunny and warmer."),
    "morning": ("Good morning! It is seven degrees outside and light rain is expected after lunch. "
                "Your first meeting starts at half past nine, so you have time for breakfast."),
}
VOICE = "jm_kumo"
SECTION = {"voice": VOICE, "langCode": "a"}  # as bench/kokoro_speed.py
FIRST_SENTENCE = "kokoro-onnx (README), the first sentence alone"
GOAL_FIRST_S = 1.5
GOAL_FULL = 0.8  # the agent's full synthesis / kokoro-onnx's


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def first_minute(client: BenchClient, started: float, minute: float, log: Path) -> list[tuple[float, float, float, bool]]:
    """(seconds since the agent's start, first audio s, full s, prepared yet) for each request."""
    rows: list[tuple[float, float, float, bool]] = []
    while not rows or time.monotonic() - started < minute:
        at = time.monotonic() - started
        timing = client.speak("default", TEXTS["weather"], True)
        rows.append((at, timing.first_audio_ms / 1000, timing.response_ms / 1000,
                     "Kokoro: prepared" in log.read_text(errors="replace")))
    return rows


def in_process(home: Path, variants: bool) -> dict[str, Callable[[str], float]]:
    """Each side in this process: text -> seconds for the whole text."""
    from kokoro_onnx import Kokoro

    from providers.kokoro import assets
    from providers.kokoro.prepare import cpu_count, open_session
    from tests.contexts import home_context

    source = assets.bundled_model(home_context(home))
    voices = str(assets.bundled_voices_file())
    readme = Kokoro(str(source.path), voices)  # kokoro-onnx's own session, as its README makes it
    sides: dict[str, Callable[[str], float]] = {"kokoro-onnx (README)": timed(readme)}
    sides[FIRST_SENTENCE] = lambda text: timed(readme)(first_sentence(text))
    if variants:
        from providers.kokoro.prepare import fold_to

        folded = home / "float.onnx"
        fold_to(source.path, folded)
        sides["int8 as shipped, provider's session"] = timed(Kokoro.from_session(open_session(source.path, cpu_count()), voices))
        sides["float folded, provider's session"] = timed(Kokoro.from_session(open_session(folded, cpu_count()), voices))
    for side in sides.values():
        side("Hello there.")  # first-call allocations, espeak's start
    return sides


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0]


def timed(kokoro: object) -> Callable[[str], float]:
    def run(text: str) -> float:
        begin = time.perf_counter()
        kokoro.create(text, VOICE, lang="en-us")  # type: ignore[attr-defined]
        return time.perf_counter() - begin

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--minute", type=float, default=60.0, help="seconds after the start that count as the first minute")
    parser.add_argument("--variants", action="store_true", help="also time the int8 and the folded float model in-process")
    parser.add_argument("--keep-log", type=Path, help="copy the agent's log here at the end")
    args = parser.parse_args()
    speak_bench.REQUEST_TIMEOUT_S = 900.0  # a paragraph of Kokoro on a loaded 2-core machine takes minutes
    load_start = load()
    with tempfile.TemporaryDirectory(prefix="kokoro-agent-") as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        home = make_home(root / "home")
        write_json(home / "profiles" / "default" / "etc" / "voice.json",
                   {"tts": {"provider": "kokoro", "kokoro": SECTION}, "cache": {"enabled": False}})
        started = time.monotonic()
        agent = AgentProcess(home, broker.port).start()
        client = None
        try:
            agent.wait_log("ready", timeout=300)
            ready_s = time.monotonic() - started
            client = BenchClient(broker.port)
            early = first_minute(client, started, args.minute, agent.log)
            deadline = time.monotonic() + 900
            text = agent.log.read_text(errors="replace")
            # the engine says "... while it is prepared for this machine" when it starts preparing
            while "while it is prepared" in text and "Kokoro: prepared" not in text and "preparing the model failed" not in text:
                if time.monotonic() > deadline:
                    raise RuntimeError("the agent's Kokoro preparation did not end in 15 minutes")
                time.sleep(1)
                text = agent.log.read_text(errors="replace")
            prepared_s = time.monotonic() - started
            picked = re.findall(r"Kokoro: (\S+) is faster here \(([^)]*)\)", text)
            sides = in_process(home, args.variants)
            agent_first: dict[str, list[float]] = {}
            full: dict[tuple[str, str], list[float]] = {}
            names = ["agent (MQTT stream)", *sides]
            for round_no in range(args.rounds):
                for label, words in TEXTS.items():
                    for name in names if round_no % 2 == 0 else names[::-1]:
                        if name == names[0]:
                            timing = client.speak("default", words, True)
                            agent_first.setdefault(label, []).append(timing.first_audio_ms / 1000)
                            full.setdefault((name, label), []).append(timing.response_ms / 1000)
                        else:
                            full.setdefault((name, label), []).append(sides[name](words))
            seconds = audio_seconds(agent.log)
        finally:
            if client is not None:
                client.close()
            agent.stop()
            broker.stop()
            if args.keep_log is not None:
                args.keep_log.write_bytes(agent.log.read_bytes())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                            check=False).stdout.strip()
    out = [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {commit}; "
        f"{os.cpu_count()} CPUs, shared; load average at start {load_start}, at end {load()}",
        f"- Voice {VOICE}, English, speed 1.0, the bundled int8 model; agent cache off; {args.rounds} rounds, sides interleaved",
        f"- Agent start to `ready`: {ready_s:.1f} s; preparation over (log) at {prepared_s:.1f} s"
        + (f"; it picked {picked[-1][0]} ({picked[-1][1]})" if picked else "; nothing to prepare"),
        "",
        "Requests in the agent's first minute (the `weather` paragraph, streamed over MQTT, back to back):",
        "",
        "| sent at (s after start) | first audio s | full audio s | prepared by then | first audio goal <= 1.5 s |",
        "|---|---|---|---|---|",
    ]
    for at, first, whole, ready in early:
        out.append(f"| {at:.1f} | {first:.2f} | {whole:.2f} | {'yes' if ready else 'no'} | "
                   f"{'met' if first <= GOAL_FIRST_S else 'not met'} |")
    out += ["", "After the first minute (seconds, median (min) of the rounds; full audio / kokoro-onnx per round, median):", "",
            "| text | side | first audio | full audio | full / kokoro-onnx per round | goal |", "|---|---|---|---|---|---|"]
    for label in TEXTS:
        base = full[("kokoro-onnx (README)", label)]
        for name in names:
            if name == FIRST_SENTENCE:
                out.append(f"| {label} | {name} | {statistics.median(full[(name, label)]):.2f} "
                           f"({min(full[(name, label)]):.2f}) | - | - | the floor for first audio |")
                continue
            times = full[(name, label)]
            ratio = statistics.median(a / b for a, b in zip(times, base, strict=True))
            first_cell = (f"{statistics.median(agent_first[label]):.2f} ({min(agent_first[label]):.2f})"
                          if name == names[0] else "-")
            goal = "-"
            if name == names[0]:
                goal = ("first " + ("met" if statistics.median(agent_first[label]) <= GOAL_FIRST_S else "not met")
                        + ", full " + ("met" if ratio <= GOAL_FULL else "not met"))
            out.append(f"| {label} | {name} | {first_cell} | {statistics.median(times):.2f} ({min(times):.2f}) | {ratio:.2f} | {goal} |")
    out += ["", "Audio seconds said by the agent (speak.finished): " + ", ".join(f"{s:.2f}" for s in sorted(set(seconds)))]
    print("\n".join(out))
    return 0


def audio_seconds(log: Path) -> list[float]:
    return [float(x) for x in re.findall(r"'audio_seconds': ([0-9.]+)", log.read_text(errors="replace"))]


if __name__ == "__main__":
    raise SystemExit(main())
