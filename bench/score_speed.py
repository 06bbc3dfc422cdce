"""Record-path scoring speed as a multiple of real time, with and without DNSMOS.

Runs the analysis exactly as the agent's analysis process does (one thread, the same
functions), on real speech from the Piper voice cut by the same VAD. Run by hand:
`.venv/bin/python bench/score_speed.py` (results go into bench/RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.record import analysis  # noqa: E402
from agent.record.decode import Audio, resample  # noqa: E402
from agent.record.vad import VadOptions, segment  # noqa: E402
from tests.speech import OWNER_RATE, owner  # noqa: E402

TEXTS = [
    "Turn on the lights in the kitchen, please.",
    "What is the weather going to be like tomorrow morning when I leave for work?",
    "Remind me to call my sister on Sunday afternoon about the birthday party.",
    "Play some quiet music in the living room while I read.",
    "I think the heating should come on a little earlier on weekdays, around six.",
    "Did anybody feed the cat this morning, or should I do it now?",
]


def utterances() -> list:  # type: ignore[type-arg]
    pad = np.zeros(OWNER_RATE // 2, np.float32)
    stream = np.concatenate([np.concatenate([pad, owner(t), pad]) for t in TEXTS])
    found, _ = segment(resample(Audio(stream, OWNER_RATE)).samples, VadOptions())
    return found


def run(dnsmos: bool, rounds: int) -> tuple[float, float]:
    found = utterances()
    reference = analysis._get_models().speaker.embed(found[0].samples)
    options = analysis.AnalysisOptions(VadOptions(), dnsmos, reference, 0.7)
    analysis.score_utterances(found[:1], options)  # warm-up
    audio_seconds = sum(u.seconds for u in found)
    multiples = []
    for _ in range(rounds):
        start = time.perf_counter()
        analysis.score_utterances(found, options)
        multiples.append(audio_seconds / (time.perf_counter() - start))
    return audio_seconds, statistics.median(multiples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    analysis._init_worker()  # same niceness and thread count as the analysis process
    for dnsmos in (False, True):
        seconds, multiple = run(dnsmos, args.rounds)
        print(f"DNSMOS {'on ' if dnsmos else 'off'}: {len(utterances())} utterances, {seconds:.1f} s of speech, "
              f"scored at {multiple:.1f}x real time (median of {args.rounds})")


if __name__ == "__main__":
    main()
