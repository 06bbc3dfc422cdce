"""Does a trained voicepack sound more like an unseen voice than Kokoro's stock voices do?

Two targets Kokoro's starting set does not have:
  piper       the bundled Piper voice (en_US-joe-medium), a different model altogether;
  kokoro:NAME a Kokoro voice (e.g. jm_kumo) taken out of the starting set: the search may not
              start from it, blend it, or step along its difference to the others.
The target's speech on one set of sentences is the training dataset (with a metadata.csv, as
the record path exports it); a second, disjoint set of sentences is held out. After training,
every starting voice and the trained voicepack say the held-out sentences, and the Resemblyzer
similarity of that speech to the held-out target audio is reported.

    .venv/bin/python bench/kokoro_voicepack.py --target piper --epochs 150 --out /tmp/kvp
    .venv/bin/python bench/kokoro_voicepack.py --target kokoro:jm_kumo --epochs 100 --out /tmp/kvk
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TRAIN = [
    "Please turn off the lights in the living room.",
    "The meeting has been moved to three o'clock this afternoon.",
    "I left my keys on the kitchen table again.",
    "It is going to rain tonight, so bring an umbrella.",
    "Remind me to water the plants on Sunday.",
    "The train to the city leaves every twenty minutes.",
    "Could you read me the news headlines?",
    "We need milk, bread and a dozen eggs.",
    "My favourite season is autumn, when the leaves turn red.",
    "The children are playing football in the garden.",
    "Set a timer for fifteen minutes, please.",
    "The library closes early on public holidays.",
]
HELD_OUT = [
    "The package should arrive before noon on Friday.",
    "A cup of hot tea is perfect on a cold day.",
    "The museum has a new exhibition about ancient ships.",
    "Turn the music down, the baby is sleeping.",
    "Every morning the birds sing outside my window.",
    "Please lock the front door before you leave.",
]


def write_dataset(directory: Path, texts: list[str], target: str, home: Path) -> None:
    import soundfile

    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, text in enumerate(texts):
        name = f"target{index:03d}.wav"
        audio, rate = speak_target(target, text, home)
        soundfile.write(directory / name, audio, rate)
        rows.append((name, text))
    with (directory / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter="|").writerows(rows)


def speak_target(target: str, text: str, home: Path) -> tuple[np.ndarray, int]:
    if target == "piper":
        from tests.speech import OWNER_RATE, owner

        return owner(text), OWNER_RATE
    from providers.base import ProviderContext
    from providers.kokoro.config import KokoroSettings
    from providers.kokoro.engine import KokoroProvider

    ctx = ProviderContext("default", home / "profiles" / "default", (home / "out" / "voices",))
    settings = KokoroSettings.model_validate({"langCode": "a", "voice": target.partition(":")[2]})
    pcm = b"".join(c.pcm for c in KokoroProvider().synthesize(text, settings, ctx))
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768, 24000


def without_voice(name: str) -> None:
    """Take a stock voice out of every search the trainer builds (bench only)."""
    from providers.kokoro import voicepack_trainer
    from providers.kokoro.walk import style_spread

    build = voicepack_trainer._Search.build

    def build_without(*args: object, **kwargs: object) -> voicepack_trainer._Search:
        search = build(*args, **kwargs)  # type: ignore[arg-type]
        search.stock.pop(name)
        search.directions = list(search.stock.values())
        search.spread = style_spread(search.directions)
        return search

    voicepack_trainer._Search.build = build_without  # type: ignore[method-assign]


def held_out_similarity(style: np.ndarray, search: object, embedder: object, target: np.ndarray) -> float:
    vectors = []
    for text in HELD_OUT:
        phonemes = search.engine.phonemize(search.settings, search.ctx, text)  # type: ignore[attr-defined]
        audio = search.engine.speak_phonemes(search.settings, search.ctx, phonemes, style)  # type: ignore[attr-defined]
        vectors.append(embedder.embed(audio, 24000))  # type: ignore[attr-defined]
    return float(np.mean([v @ target for v in vectors]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="piper", help="piper, or kokoro:<voice> held out of the starting set")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--lines", type=int, default=3, help="training sentences each candidate says")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="kokoro-voicepack-")))
    parser.add_argument("--home", type=Path, help="agent home whose out/models/kokoro holds the prepared model")
    args = parser.parse_args()

    from agent.train.base import Progress, TrainSpec
    from providers.kokoro.voicepack_trainer import (
        KokoroVoicepackTrainer,
        VoicepackParams,
        _Search,
        read_dataset,
    )
    from providers.kokoro.walk import mean_direction

    home = args.home or args.out / "home"
    (home / "profiles" / "default").mkdir(parents=True, exist_ok=True)
    os.environ["VOICE_AGENT_HOME"] = str(home)
    write_dataset(args.out / "train", TRAIN, args.target, home)
    write_dataset(args.out / "heldout", HELD_OUT, args.target, home)
    if args.target.startswith("kokoro:"):
        without_voice(args.target.partition(":")[2])
    spec = TrainSpec(
        profile="default", speaker="joe", dataset_dir=args.out / "train", output_dir=args.out / "voicepack",
        checkpoint_dir=args.out / "checkpoint",
        params={"epochs": args.epochs, "learningRate": args.learning_rate, "lines": args.lines, "minMinutes": 0, "minSamples": 10},
    )
    log: list[dict[str, object]] = []
    started = time.monotonic()

    def report(progress: Progress) -> None:
        log.append({"t": round(time.monotonic() - started, 1), "step": progress.step, "best": progress.best, "message": progress.message})
        if progress.step % 10 == 0 or progress.stage != "training":
            print(f"{time.monotonic() - started:7.1f}s {progress.stage} {progress.step}/{progress.total} {progress.message}", flush=True)

    load_before = os.getloadavg()
    result = KokoroVoicepackTrainer().run(spec, report, lambda: False)
    minutes = (time.monotonic() - started) / 60
    load_after = os.getloadavg()

    # Evaluation on held-out sentences and held-out target audio.
    import soundfile

    from providers.kokoro.voices import load_voicepack

    params = VoicepackParams.model_validate(spec.params)
    search = _Search.build(spec, params, read_dataset(spec.dataset_dir), lambda p: None)
    embedder = search.scorer._embedder
    target = mean_direction([embedder.embed(*_mono(soundfile.read(str(p), dtype="float32"))) for p in sorted((args.out / "heldout").glob("*.wav"))])
    stock = {name: held_out_similarity(style, search, embedder, target) for name, style in search.stock.items()}
    best_stock = max(stock, key=lambda n: stock[n])
    trained = held_out_similarity(load_voicepack(result.outputs[0]), search, embedder, target)
    summary = {
        "target": args.target, "lines": args.lines, "epochs": args.epochs, "learning_rate": args.learning_rate, "minutes": round(minutes, 1),
        "load_before": load_before, "load_after": load_after, "train_metrics": result.metrics,
        "held_out_stock": stock, "best_stock": best_stock, "held_out_best_stock": stock[best_stock],
        "held_out_trained": trained, "voicepack": str(result.outputs[0]),
    }
    (args.out / "summary.json").write_text(json.dumps({**summary, "progress": log}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def _mono(read: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    audio, rate = read
    return (audio.mean(axis=1) if audio.ndim == 2 else audio), rate


if __name__ == "__main__":
    raise SystemExit(main())
