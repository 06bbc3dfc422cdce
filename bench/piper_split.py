#!/usr/bin/env python3
"""Piper in this process, split at its vocoder (the agent's engine now: a text's first run decoded
in two chunks) against the voice decoded whole (the engine before, and without ``onnx``): first
and full audio of the short sentence and the paragraph of ``bench/texts.py``, cut into pieces as
the agent cuts them (``agent/speak/text.py``), both engines taking turns in an order flipped every
round so that the load of the moment falls on both. ``--spinning``: ONNX Runtime's threads spin
(``VOICE_AGENT_ONNX_SPINNING``) in both.

    .venv/bin/python bench/piper_split.py --rounds 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.speak.text import pieces  # noqa: E402
from bench.texts import TEXTS  # noqa: E402
from providers.base import ProviderContext  # noqa: E402
from providers.piper import engine  # noqa: E402
from providers.piper.config import PiperSettings  # noqa: E402


def make(split: bool, data_dir: Path, spinning: bool) -> tuple[engine.PiperProvider, ProviderContext]:
    ctx = ProviderContext("default", data_dir, (data_dir / "voices",), data_dir, data_dir, data_dir, data_dir)
    provider = engine.PiperProvider()
    provider.use_spinning(spinning)
    whole = engine.prepared_split
    if not split:
        engine.prepared_split = lambda *args: None  # type: ignore[assignment]  # the engine as it was: decoded whole
    try:
        provider.preload(PiperSettings(), ctx)
    finally:
        engine.prepared_split = whole  # type: ignore[assignment]
    (loaded,) = provider._voices.values()
    assert (loaded.split is not None) == split
    return provider, ctx


def speak(provider: engine.PiperProvider, ctx: ProviderContext, text: str) -> tuple[float, float, int]:
    """(first audio s, full audio s, samples) for ``text``, piece by piece as the agent says it."""
    started = time.perf_counter()
    first = 0.0
    samples = 0
    for index, piece in enumerate(pieces(text)):
        for chunk in provider.synthesize(piece, PiperSettings(), replace(ctx, listener_waits=index == 0)):
            first = first or time.perf_counter() - started
            samples += len(chunk.pcm) // 2
    return first, time.perf_counter() - started, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--spinning", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sides = {"split": make(True, Path(folder), args.spinning), "whole": make(False, Path(folder), args.spinning)}
        load = os.getloadavg()
        times: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for round_ in range(args.warmup + args.rounds):
            for name, text in TEXTS.items():
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for side in order:
                    result = speak(*sides[side], text)
                    if round_ >= args.warmup:
                        times.setdefault((name, side), []).append(result)
        end = os.getloadavg()
    print(f"{args.rounds} rounds after {args.warmup} warm-up, spinning {'on' if args.spinning else 'off'}; "
          f"load {load[0]:.1f}/{load[1]:.1f} at start, {end[0]:.1f}/{end[1]:.1f} at end (1/5 min)")
    print("| text | side | first audio ms, median (min) | full audio ms, median (min) | audio s |")
    print("|---|---|---|---|---|")
    for (name, side), rows in times.items():
        first, full = [r[0] * 1000 for r in rows], [r[1] * 1000 for r in rows]
        print(f"| {name} | {side} | {statistics.median(first):.0f} ({min(first):.0f}) | "
              f"{statistics.median(full):.0f} ({min(full):.0f}) | {statistics.median(r[2] for r in rows) / 22050:.2f} |")
    print("\n| text | first audio split / whole, per round: median (p10-p90) | full audio split / whole |")
    print("|---|---|---|")
    for name in TEXTS:
        split, whole = times[(name, "split")], times[(name, "whole")]
        ratios = [[s[i] / w[i] for s, w in zip(split, whole)] for i in (0, 1)]
        print(f"| {name} | " + " | ".join(f"{statistics.median(r):.2f} ({_pct(r, 10):.2f}-{_pct(r, 90):.2f})"
                                          for r in ratios) + " |")
    return 0


def _pct(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    raise SystemExit(main())
