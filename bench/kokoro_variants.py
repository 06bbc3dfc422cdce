#!/usr/bin/env python3
"""Kokoro's int8 model as shipped against the float copy ``providers/kokoro/fold.py`` makes of it,
both under the provider's session options, in one process, turns alternating (the order flipped
every round): wall and process CPU seconds for one sentence. What the first-use timing decides
(``providers/kokoro/prepare.py``), measured with more rounds than it takes.

    .venv/bin/python bench/kokoro_variants.py --rounds 12 [--float path/to/kokoro-*.float1.onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXT = "The weather today is mild, with a light breeze from the west."
VOICE = "jm_kumo"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--float", type=Path, help="a float copy made before (default: folded here, minutes)")
    args = parser.parse_args()
    from kokoro_onnx import Kokoro

    from providers.kokoro import assets
    from providers.kokoro.prepare import cpu_count, fold_to, open_session
    from tests.contexts import home_context

    with tempfile.TemporaryDirectory(prefix="kokoro-variants-") as tmp:
        source = assets.bundled_model(home_context(Path(tmp)))
        folded = args.float
        if folded is None:
            folded = Path(tmp) / "float.onnx"
            fold_to(source.path, folded)
        voices = str(assets.bundled_voices_file())
        sides = {"int8 as shipped": Kokoro.from_session(open_session(source.path, cpu_count()), voices),
                 "float copy": Kokoro.from_session(open_session(folded, cpu_count()), voices)}
        for kokoro in sides.values():
            kokoro.create("Hello there.", VOICE, lang="en-us")  # first-call allocations
        wall: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        load = os.getloadavg()
        seconds = 0.0
        for round_no in range(args.rounds):
            for name in list(sides) if round_no % 2 == 0 else list(sides)[::-1]:
                used, start = time.process_time(), time.perf_counter()
                audio, _ = sides[name].create(TEXT, VOICE, lang="en-us")
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - used)
                seconds = len(audio) / 24000
    print(f"- load at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f}; {args.rounds} rounds; {seconds:.2f} s of audio")
    print("| variant | wall s, median (min) | process CPU s, median (min) |\n|---|---|---|")
    for name in sides:
        print(f"| {name} | {statistics.median(wall[name]):.2f} ({min(wall[name]):.2f}) | "
              f"{statistics.median(cpu[name]):.2f} ({min(cpu[name]):.2f}) |")
    float_wall = [f / i for f, i in zip(wall["float copy"], wall["int8 as shipped"], strict=True)]
    float_cpu = [f / i for f, i in zip(cpu["float copy"], cpu["int8 as shipped"], strict=True)]
    print(f"\nfloat / int8 per round: wall {statistics.median(float_wall):.2f} (float faster in "
          f"{sum(r < 1 for r in float_wall)} of {args.rounds}), CPU {statistics.median(float_cpu):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
