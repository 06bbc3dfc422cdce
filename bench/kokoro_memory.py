"""Kokoro with ONNX Runtime's memory patterns on (the agent's sessions) against off (what the
agent does for Piper, bench/RESULTS.md "Piper's memory"): time of a sentence and a paragraph, and
RSS after them and after a 2000-letter word, each cut as the agent cuts text. One setting per
process; run it with each setting in turn, several times, on a quiet machine:

    for m in on off on off; do .venv/bin/python bench/kokoro_memory.py $m /tmp/khome; done

The home is prepared on the first run (the model assembled, folded and timed)."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCE = "Hello from the voice agent."
PARAGRAPH = (
    "The weather today is mild, with a light breeze from the west. In the afternoon, clouds will gather "
    "over the hills, and there is a chance of rain by evening. Tomorrow should be sunny and warmer."
)


def main() -> None:
    setting, home = sys.argv[1], Path(sys.argv[2])
    import psutil

    import providers.kokoro.prepare as prepare

    if setting == "off":
        tuned = prepare.session_options

        def without_patterns(threads: int) -> object:
            options = tuned(threads)
            options.enable_mem_pattern = False
            return options

        prepare.session_options = without_patterns  # type: ignore[assignment]

    from agent.speak.text import pieces
    from providers.common.process import release_free_memory
    from providers.kokoro.config import KokoroSettings
    from providers.kokoro.engine import KokoroProvider
    from tests.contexts import home_context
    from tests.hostile import long_word

    ctx = home_context(home)
    provider, settings = KokoroProvider(), KokoroSettings()
    process = psutil.Process()

    def say(text: str) -> float:
        start = time.perf_counter()
        for piece in pieces(text):
            for _ in provider.synthesize(piece, settings, ctx):
                pass
        release_free_memory()  # as the agent does after each request
        return time.perf_counter() - start

    say("Hello.")
    loaded = process.memory_info().rss
    sentence = statistics.median(say(SENTENCE) for _ in range(5))
    paragraph = statistics.median(say(PARAGRAPH) for _ in range(3))
    after = process.memory_info().rss
    say(long_word(2000))
    word = process.memory_info().rss
    mb = 1024 * 1024
    print(f"| {setting} | {sentence:.3f} | {paragraph:.3f} | {loaded / mb:.0f} MB | {after / mb:.0f} MB | {word / mb:.0f} MB |")


if __name__ == "__main__":
    main()
