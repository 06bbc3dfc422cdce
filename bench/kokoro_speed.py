"""Kokoro speed on this machine, before and after preparation, and whether the output is the same.

Speed (interleaved rounds, so drift from other work on a shared machine hits every variant):
  shipped      kokoro-onnx as its README uses it: Kokoro(int8 model, voices).create(text, lang)
  int8 tuned   the agent's provider on the int8 model (threads = cores, no spinning, sequential)
  float        the agent's provider on the folded float model
  auto         what the provider picked for this machine (recorded in out/models/kokoro/*.runtime.json)
Times cover phonemization and synthesis of the whole text (no MQTT); RTF = time / audio seconds.

Equivalence (int8 model vs folded float model, same text, voice and settings):
  Resemblyzer similarity of the two outputs, and PocketSphinx (CMU US English model from PyPI)
  word and phone transcripts of both.

    .venv/bin/python bench/kokoro_speed.py --rounds 5 --markdown /tmp/kokoro-speed.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXTS = {
    "sentence": "Hello from the voice agent.",
    "two sentences (about 5.5 s)": "Hello from the voice agent. This is Kokoro speaking English on a small home server.",
    "paragraph": (
        "The weather today is mild, with a light breeze from the west. In the afternoon, clouds will gather "
        "over the hills, and there is a chance of rain by evening. Tomorrow should be sunny and warmer."
    ),
}
EQUIVALENCE = [
    ("jm_kumo", "Please turn off the lights in the living room."),
    ("jm_kumo", "The train to the city leaves every twenty minutes."),
    ("jf_alpha", "We need milk, bread and a dozen eggs."),
    ("jf_alpha", "Set a timer for fifteen minutes, please."),
]
VOICE = "jm_kumo"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--home", type=Path, help="agent home (default: a temporary one; preparation is timed too)")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    from kokoro_onnx import Kokoro

    from tests.contexts import home_context
    from providers.kokoro import assets
    from providers.kokoro.config import KokoroSettings
    from providers.kokoro.engine import KokoroProvider

    home = args.home or Path(tempfile.mkdtemp(prefix="kokoro-speed-"))
    ctx = home_context(home)
    lines = [f"# Kokoro speed ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", ""]
    lines += [f"- Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, {cpu_model()}",
              f"- Load average at start: {fmt_load()}", ""]

    provider = KokoroProvider()
    started = time.perf_counter()
    provider.preload(KokoroSettings(langCode="a", voice=VOICE), ctx)
    first_use = time.perf_counter() - started
    runtime = provider.runtime(KokoroSettings(langCode="a", voice=VOICE), ctx)
    lines += [(f"- First use (assemble, fold, time both variants, load): {first_use:.1f} s "
              f"(timings {', '.join(f'{k} {v:.2f} s' for k, v in runtime.timings.items())}; picked **{runtime.variant}**)"), ""]

    shipped = Kokoro(str(assets.bundled_model(ctx).path), str(assets.bundled_voices_file()))
    variants = {
        "shipped": lambda text: shipped.create(text, VOICE, lang="en-us")[0],
        "int8 tuned": speaker(provider, ctx, "int8"),
        "float": speaker(provider, ctx, "float"),
        "auto": speaker(provider, ctx, "auto"),
    }
    seconds: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    audio_s: dict[tuple[str, str], float] = {}
    for fn in variants.values():  # warm-up: first-call allocations, espeak start
        fn(TEXTS["sentence"])
    for _ in range(args.rounds):
        for label, text in TEXTS.items():
            for name, fn in variants.items():
                c0, t0 = time.process_time(), time.perf_counter()
                audio = fn(text)
                seconds.setdefault((name, label), []).append(time.perf_counter() - t0)
                cpu.setdefault((name, label), []).append(time.process_time() - c0)
                audio_s[(name, label)] = len(audio) / 24000
    lines += [f"## Speed ({args.rounds} interleaved rounds; seconds median / min; RTF of the median; CPU = process CPU seconds per audio second)", "",
              "| text | variant | audio s | time median | time min | RTF median | RTF min | CPU s per audio s |", "|---|---|---|---|---|---|---|---|"]
    for label in TEXTS:
        for name in variants:
            times = seconds[(name, label)]
            audio = audio_s[(name, label)]
            med = statistics.median(times)
            lines.append(f"| {label} | {name} | {audio:.2f} | {med:.2f} | {min(times):.2f} | {med / audio:.3f} | {min(times) / audio:.3f} | "
                         f"{statistics.median(cpu[(name, label)]) / audio:.2f} |")
    lines += ["", f"- Load average at the end of the speed rounds: {fmt_load()}", ""]
    lines += equivalence(provider, ctx)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


def speaker(provider: object, ctx: object, optimize: str):  # type: ignore[no-untyped-def]
    from providers.kokoro.config import KokoroSettings

    settings = KokoroSettings.model_validate({"langCode": "a", "voice": VOICE, "optimize": optimize})

    def speak(text: str) -> np.ndarray:
        pcm = b"".join(c.pcm for c in provider.synthesize(text, settings, ctx))  # type: ignore[attr-defined]
        return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768

    return speak


def equivalence(provider: object, ctx: object) -> list[str]:
    from providers.kokoro.config import KokoroSettings
    from providers.kokoro.similarity import SpeakerEmbedder

    embedder = SpeakerEmbedder()
    rows = ["## Equivalence: int8 model vs folded float model", "",
            "| voice | text | Resemblyzer similarity | duration int8 / float s | words (int8) | words (float) | word WER vs text int8 / float | phone edit distance int8 vs float |",
            "|---|---|---|---|---|---|---|---|"]
    sims = []
    for voice, text in EQUIVALENCE:
        out = {}
        for variant in ("int8", "float"):
            settings = KokoroSettings.model_validate({"langCode": "a", "voice": voice, "optimize": variant})
            pcm = b"".join(c.pcm for c in provider.synthesize(text, settings, ctx))  # type: ignore[attr-defined]
            out[variant] = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
        sim = float(embedder.embed(out["int8"], 24000) @ embedder.embed(out["float"], 24000))
        sims.append(sim)
        words = {v: recognise(a) for v, a in out.items()}
        phones = {v: recognise(a, phones=True) for v, a in out.items()}
        ref = normalise(text)
        rows.append(f"| {voice} | {text} | {sim:.3f} | {len(out['int8']) / 24000:.2f} / {len(out['float']) / 24000:.2f} | "
                    f"{words['int8']} | {words['float']} | {wer(ref, words['int8']):.2f} / {wer(ref, words['float']):.2f} | "
                    f"{edit(phones['int8'].split(), phones['float'].split()) / max(len(phones['int8'].split()), 1):.2f} |")
    rows += ["", f"Minimum similarity {min(sims):.3f}, mean {statistics.mean(sims):.3f}.", ""]
    return rows


def recognise(audio: np.ndarray, phones: bool = False) -> str:
    import os as _os

    import pocketsphinx
    import soxr
    from pocketsphinx import Decoder

    pcm = (np.clip(soxr.resample(audio, 24000, 16000), -1, 1) * 32767).astype(np.int16).tobytes()
    if phones:
        model = _os.path.join(pocketsphinx.get_model_path(), "en-us")
        decoder = Decoder(samprate=16000, allphone=_os.path.join(model, "en-us-phone.lm.bin"), lm=None, lw=2.0, beam=1e-20, pbeam=1e-20)
    else:
        decoder = Decoder(samprate=16000)
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    if phones:
        return " ".join(seg.word for seg in decoder.seg() if seg.word not in ("SIL", "+SPN+", "+NSN+"))
    hyp = decoder.hyp()
    return hyp.hypstr if hyp else ""


def normalise(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalpha() or ch in " '").split())


def edit(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def wer(reference: str, hypothesis: str) -> float:
    ref = reference.split()
    return edit(ref, hypothesis.split()) / max(len(ref), 1)


def fmt_load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
