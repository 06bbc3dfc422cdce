#!/usr/bin/env python3
"""What VOICE_AGENT_SPEAK_ARENA costs in speed and gives in memory (issue 24), engine in process.

For each mode, a process of its own (the modes interleaved, ``--repeat`` times, so a busy minute
hits them all): the voice loaded as the agent loads it, then the bench texts (bench/texts.py),
each cut as the agent cuts text and the heap trimmed after each as the agent does. Per text the
median of ``--rounds``: time to the first chunk, the whole synthesis (wall) and the process's CPU
seconds (user + system: the figure a loaded machine disturbs least). RSS when loaded, after the
texts, and after an idle release.

- ``keep``: the arena kept for the next sentence (the agent before issue 24's idle release; what
  ``idle`` is during a burst of requests).
- ``idle``: each timed text comes after an idle release: what the first request after
  VOICE_AGENT_SPEAK_RELEASE_SECONDS of silence costs.
- ``off``: no arena.

    .venv/bin/python bench/arena_speed.py --engine piper
    .venv/bin/python bench/arena_speed.py --engine kokoro --home /tmp/khome --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODES = ("keep", "idle", "off")


def measure(engine: str, mode: str, rounds: int, home: Path) -> dict[str, Any]:
    import psutil

    from agent.speak.text import pieces
    from bench.texts import TEXTS
    from providers.common.process import release_free_memory
    from tests.contexts import home_context

    provider: Any
    settings: Any
    if engine == "piper":
        from providers.piper.config import PiperSettings
        from providers.piper.engine import PiperProvider

        provider, settings = PiperProvider(), PiperSettings()
    else:
        from providers.kokoro.config import KokoroSettings
        from providers.kokoro.engine import KokoroProvider

        provider, settings = KokoroProvider(), KokoroSettings.model_validate({"voice": "jf_alpha"})  # the one bundled
    provider.use_arena(mode != "off")
    ctx = home_context(home)
    process = psutil.Process()

    def release() -> None:
        provider.release_memory()
        release_free_memory()

    def say(text: str) -> tuple[float, float, float]:
        began, cpu = time.perf_counter(), time.process_time()
        first = None
        for piece in pieces(text):
            for _ in provider.synthesize(piece, settings, ctx):
                first = first if first is not None else time.perf_counter() - began
        whole, cpu = time.perf_counter() - began, time.process_time() - cpu
        release_free_memory()  # as the agent does after each request
        return first or whole, whole, cpu

    provider.preload(settings, ctx)
    say("Warm up.")
    release()
    loaded = process.memory_info().rss
    found: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, text in TEXTS.items():
            if mode == "idle":
                release()
            for key, value in zip(("first", "whole", "cpu"), say(text)):
                found.setdefault(f"{name} {key}", []).append(value)
    say(TEXTS["paragraph"])  # the last request warm in every mode
    after = process.memory_info().rss
    release()
    released = process.memory_info().rss
    mb = 1024 * 1024
    return {"medians": {k: statistics.median(v) for k, v in found.items()},
            "rss_mb": {"loaded": loaded // mb, "after the texts": after // mb, "after an idle release": released // mb}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("piper", "kokoro"), default="piper")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--home", type=Path, default=Path("/tmp/arena-speed-home"), help="Kokoro: a home with its prepared model")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.engine, args.child, args.rounds, args.home)))
        return 0
    rows = []
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, __file__, "--engine", args.engine, "--rounds", str(args.rounds),
                                   "--home", str(args.home), "--child", mode], capture_output=True, text=True)
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            row = {"mode": mode, "load": round(load, 1), **json.loads(done.stdout.strip().splitlines()[-1])}
            print(json.dumps(row), flush=True)
            rows.append(row)
    keys = list(rows[0]["medians"])
    print(f"\n| {args.engine} | load | " + " | ".join(f"{k} (s)" for k in keys) + " | "
          + " | ".join(f"RSS {k}" for k in rows[0]["rss_mb"]) + " |")
    print("|---" * (2 + len(keys) + len(rows[0]["rss_mb"])) + "|")
    for row in rows:
        print(f"| {row['mode']} | {row['load']} | " + " | ".join(f"{row['medians'][k]:.3f}" for k in keys) + " | "
              + " | ".join(f"{v} MB" for v in row["rss_mb"].values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
