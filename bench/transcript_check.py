"""How far PocketSphinx's hearing of a take is from its prompt: the numbers behind
``agent/record/transcript.py``'s MAX_WER.

The bundled Piper voice reads prompts (as the Record card asks) at 16 kHz with half a second of
silence around; each take is checked against its own prompt (a true reading) and against the
next prompt (other words). Usage: python bench/transcript_check.py [count]
"""

from __future__ import annotations

import statistics
import sys

import numpy as np
import soxr

from agent.record.prompts import load
from agent.record.recognise import Recogniser
from agent.record.transcript import MAX_WER, wer
from tests.speech import OWNER_RATE, owner, with_silence


def main(count: int) -> None:
    prompts = load()
    step = max(1, len(prompts) // count)
    chosen = prompts[::step][:count]
    hear = Recogniser()
    true, other = [], []
    for i, prompt in enumerate(chosen):
        audio = soxr.resample(with_silence(owner(prompt), OWNER_RATE), OWNER_RATE, 16000).astype(np.float32)
        heard = hear(audio)
        true.append(wer(prompt, heard))
        other.append(wer(chosen[(i + 1) % len(chosen)], heard))
        print(f"{true[-1]:.2f} {other[-1]:.2f} | {prompt} | {heard}")
    for name, rates in (("own prompt", true), ("another prompt", other)):
        print(f"{name:15} n={len(rates)} min {min(rates):.2f} median {statistics.median(rates):.2f} "
              f"max {max(rates):.2f}; flagged at > {MAX_WER}: {sum(r > MAX_WER for r in rates)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
