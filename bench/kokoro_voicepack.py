"""Does a trained voicepack sound more like an unseen voice than Kokoro's stock voices do?

Two targets Kokoro's starting set does not have:
  piper       the bundled Piper voice (en_US-joe-medium), a different model altogether;
  piper-high  the same voice with its pitch raised 1.7x by Praat (PSOLA), its formants kept: a
              second English owner about 50 Hz higher than any bundled English voice;
  kokoro:NAME a Kokoro voice (e.g. jm_kumo) taken out of the starting set: the search may not
              start from it, blend it, or step along its difference to the others.
The target's speech on one set of sentences is the training dataset (with a metadata.csv, as
the record path exports it); a second, disjoint set of sentences is held out. After training,
every starting voice and the trained voicepack say the held-out sentences, and the Resemblyzer
similarity of that speech to the held-out target audio is reported, with the word error rate
of pocketsphinx on it (the trained voice must still be understood) and the median pitch by
Praat (praat-parselmouth, the `bench` extra: a tracker the trainer does not use).

The training runs in a process of its own (``--train-only``, started by this script) so that its
peak memory (``VmHWM``) is the training job's alone, as the agent's runner would see it.

    .venv/bin/python bench/kokoro_voicepack.py --target piper --epochs 150 --out /tmp/kvp
    .venv/bin/python bench/kokoro_voicepack.py --target kokoro:jm_kumo --epochs 100 --out /tmp/kvk
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

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


@functools.cache
def _kokoro() -> Any:
    """One engine for every sentence: a new KokoroProvider per sentence kept a model each (15 GB)."""
    from providers.kokoro.engine import KokoroProvider

    return KokoroProvider()


HIGHER_PITCH = 1.7  # the second English owner: the Piper voice's F0 (about 88 Hz) times this, same timbre


def speak_target(target: str, text: str, home: Path) -> tuple[np.ndarray, int]:
    if target in ("piper", "piper-high"):
        from tests.speech import OWNER_RATE, owner

        audio = owner(text)
        return (raised_pitch(audio, OWNER_RATE, HIGHER_PITCH) if target == "piper-high" else audio), OWNER_RATE
    from agent.layout import Layout
    from providers.kokoro.config import KokoroSettings

    ctx = Layout(home).provider_context("default")
    settings = KokoroSettings.model_validate({"langCode": "a", "voice": target.partition(":")[2]})
    pcm = b"".join(c.pcm for c in _kokoro().synthesize(text, settings, ctx))
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768, 24000


def raised_pitch(audio: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """The same speech with its pitch times ``factor`` and its formants kept (Praat's PSOLA
    resynthesis): an owner whose pitch no bundled English voice has. (WORLD's own trackers read
    this voice an octave high, so its resynthesis moved the wrong F0.)"""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(audio.astype(np.float64), rate)
    manipulation = call(sound, "To Manipulation", 0.01, PRAAT_FLOOR_HZ, PRAAT_CEILING_HZ)
    tier = call(manipulation, "Extract pitch tier")
    call(tier, "Multiply frequencies", sound.xmin, sound.xmax, factor)
    call([tier, manipulation], "Replace pitch tier")
    out = call(manipulation, "Get resynthesis (overlap-add)")
    return np.clip(out.values[0], -1.0, 1.0).astype(np.float32)


def without_voice(name: str) -> None:
    """Take a stock voice out of every search the trainer builds (bench only)."""
    from providers.kokoro import voicepack_trainer
    from providers.kokoro.similarity import style_spread

    build = voicepack_trainer._Search.build

    def build_without(*args: object, **kwargs: object) -> voicepack_trainer._Search:
        search = build(*args, **kwargs)  # type: ignore[arg-type]
        search.stock.pop(name)
        search.spread = style_spread(list(search.stock.values()))
        return search

    voicepack_trainer._Search.build = build_without  # type: ignore[method-assign]


PRAAT_FLOOR_HZ, PRAAT_CEILING_HZ = 60.0, 500.0


def praat_pitch(audio: np.ndarray, rate: int) -> float:
    """Median F0 (Hz) of the voiced frames by Praat's autocorrelation tracker (floor 60 Hz,
    ceiling 500); 0 when nothing is voiced."""
    import parselmouth

    sound = parselmouth.Sound(np.asarray(audio, np.float64), sampling_frequency=float(rate))
    f0 = sound.to_pitch_ac(time_step=0.01, pitch_floor=PRAAT_FLOOR_HZ, pitch_ceiling=PRAAT_CEILING_HZ).selected_array["frequency"]
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if len(voiced) else 0.0


def held_out(style: np.ndarray, search: object, embedder: object, target: np.ndarray) -> tuple[float, float, np.ndarray, float]:
    """Of ``style`` saying HELD_OUT: mean similarity to the held-out target audio, word error
    rate, plain acoustics (a check that does not use the speaker encoder the training used) and
    Praat's pitch (median of the sentences' medians)."""
    from kokoro_speed import normalise, recognise, wer

    vectors, errors, features, praat = [], [], [], []
    for text in HELD_OUT:
        phonemes = search.engine.phonemize(search.settings, search.ctx, text)  # type: ignore[attr-defined]
        audio = search.engine.speak_phonemes(search.settings, search.ctx, phonemes, style)  # type: ignore[attr-defined]
        vectors.append(embedder.embed(audio, 24000))  # type: ignore[attr-defined]
        errors.append(wer(normalise(text), normalise(recognise(audio))))
        features.append(acoustics(audio, 24000))
        praat.append(praat_pitch(audio, 24000))
    return (float(np.mean([v @ target for v in vectors])), float(np.mean(errors)), np.mean(features, axis=0),
            float(np.median(praat)))


def acoustics(audio: np.ndarray, rate: int) -> np.ndarray:
    """[median pitch in Hz (torchcrepe, periodic frames), 40-band log-mel envelope of the loud
    frames (dB, mean removed)]. Not the trainer's own pitch estimate (yin), and not pyin, which
    read 399 Hz for a trained voice that crepe and yin both put at 85 Hz."""
    import soxr
    import torch
    import torchcrepe

    from providers.common.librosa_loader import load_librosa

    librosa = load_librosa()
    wav = soxr.resample(np.asarray(audio, np.float32), rate, 16000)
    mel = 10 * np.log10(librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=512, hop_length=160, n_mels=40, fmax=7600) + 1e-10)
    loud = mel.max(axis=0) > mel.max() - 35
    envelope = mel[:, loud].mean(axis=1)
    pitch, periodicity = torchcrepe.predict(torch.from_numpy(wav)[None], 16000, 160, 50, 500, "tiny", return_periodicity=True, batch_size=512)
    pitch, periodic = pitch.numpy().ravel(), periodicity.numpy().ravel() > 0.5
    return np.concatenate([[float(np.median(pitch[periodic])) if periodic.any() else 0.0], envelope - envelope.mean()])


def acoustic_distance(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Pitch apart in semitones, envelope apart in dB RMS."""
    return {"semitones": round(float(12 * np.log2(a[0] / b[0])), 2), "envelope_db": round(float(np.sqrt(np.mean((a[1:] - b[1:]) ** 2))), 2)}


def target_rating(folder: Path) -> tuple[float, np.ndarray, float]:
    """Word error rate, acoustics and Praat's pitch of the held-out target audio itself."""
    import soundfile
    import soxr
    from kokoro_speed import normalise, recognise, wer

    errors, features, praat = [], [], []
    for text, path in zip(HELD_OUT, sorted(folder.glob("*.wav")), strict=True):
        audio, rate = _mono(soundfile.read(str(path), dtype="float32"))
        errors.append(wer(normalise(text), normalise(recognise(soxr.resample(audio, rate, 24000)))))
        features.append(acoustics(audio, rate))
        praat.append(praat_pitch(audio, rate))
    return float(np.mean(errors)), np.mean(features, axis=0), float(np.median(praat))


def folder_praat(folder: Path) -> float:
    """Praat's pitch of a dataset folder (median of the files' medians)."""
    import soundfile

    return float(np.median([praat_pitch(*_mono(soundfile.read(str(p), dtype="float32"))) for p in sorted(folder.glob("*.wav"))]))


def peak_memory_mb() -> dict[str, int]:
    """This process's peak resident memory: ``VmHWM`` and ``ru_maxrss`` (MB)."""
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    return {"vmhwm_mb": hwm // 1024, "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="piper", help="piper, piper-high (its pitch raised by Praat), or kokoro:<voice> held out of the starting set")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--memory", default="auto", choices=["auto", "low", "fast"], help="the job's memory setting")
    parser.add_argument("--lines", type=int, default=3, help="sentences each checked voicepack says")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="kokoro-voicepack-")))
    parser.add_argument("--home", type=Path, help="agent home whose out/models/kokoro holds the prepared model")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the voicepack an earlier run left in --out again")
    parser.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)  # the training process this script starts
    args = parser.parse_args()

    from agent.layout import Layout
    from agent.memory import report as memory_report
    from providers.kokoro.similarity import mean_direction
    from providers.kokoro.voicepack_trainer import VoicepackParams, _Search, read_dataset
    from providers.training import TrainSpec

    home = args.home or args.out / "home"
    (home / "profiles" / "default").mkdir(parents=True, exist_ok=True)
    os.environ["VOICE_AGENT_HOME"] = str(home)
    if not (args.evaluate_only or args.train_only):
        write_dataset(args.out / "train", TRAIN, args.target, home)
        write_dataset(args.out / "heldout", HELD_OUT, args.target, home)
    if args.target.startswith("kokoro:"):
        without_voice(args.target.partition(":")[2])
    spec = TrainSpec(
        profile="default", speaker="joe", dataset_dir=args.out / "train", output_dir=args.out / "voicepack",
        checkpoint_dir=args.out / "checkpoint",
        params={"epochs": args.epochs, "learningRate": args.learning_rate, "lines": args.lines, "minMinutes": 0, "minSamples": 10,
                "memory": args.memory},
        ctx=Layout(home).provider_context("default"), memory_mb=memory_report().available_mb,
    )
    if args.train_only:
        return train(spec, args.out / "training.json")
    if not args.evaluate_only:
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--out", str(args.out), "--train-only"], check=True)
    training = json.loads((args.out / "training.json").read_text())
    log = training.pop("progress")
    voicepack = Path(training.pop("voicepack"))

    # Evaluation on held-out sentences and held-out target audio.
    import soundfile

    from providers.kokoro.voices import load_voicepack

    params = VoicepackParams.model_validate(spec.params)
    search = _Search.build(spec, params, read_dataset(spec.dataset_dir), lambda p: None)
    embedder = search.scorer.embedder
    target = mean_direction([embedder.embed(*_mono(soundfile.read(str(p), dtype="float32"))) for p in sorted((args.out / "heldout").glob("*.wav"))])
    rated = {name: held_out(style, search, embedder, target) for name, style in search.stock.items()}
    stock = {name: similarity for name, (similarity, _, _, _) in rated.items()}
    best_stock = max(stock, key=lambda n: stock[n])
    trained, trained_wer, trained_acoustics, trained_praat = held_out(load_voicepack(voicepack), search, embedder, target)
    wer_target, target_acoustics, target_praat = target_rating(args.out / "heldout")
    summary = {
        "target": args.target, "lines": args.lines, "epochs": args.epochs, "learning_rate": args.learning_rate, **training,
        "held_out_stock": stock, "best_stock": best_stock, "held_out_best_stock": stock[best_stock],
        "held_out_trained": trained, "voicepack": str(voicepack),
        "wer_target": wer_target, "wer_best_stock": rated[best_stock][1], "wer_trained": trained_wer,
        "pitch_hz": {"target": target_acoustics[0], "best_stock": rated[best_stock][2][0], "trained": trained_acoustics[0]},
        "praat_hz": {"target_train": folder_praat(args.out / "train"), "target": target_praat,
                     "best_stock": rated[best_stock][3], "trained": trained_praat,
                     "trained_off": round(trained_praat / target_praat - 1, 3),
                     "stock": {name: round(r[3], 1) for name, r in rated.items()}},
        "from_target": {"best_stock": acoustic_distance(rated[best_stock][2], target_acoustics),
                        "trained": acoustic_distance(trained_acoustics, target_acoustics)},
    }
    (args.out / "summary.json").write_text(json.dumps({**summary, "progress": log}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def train(spec: object, into: Path) -> int:
    """The training run alone (this process is the training job's): its figures into ``into``."""
    from providers.kokoro.voicepack_trainer import KokoroVoicepackTrainer
    from providers.training import Progress

    log: list[dict[str, object]] = []
    started = time.monotonic()
    stage = {"name": "start"}
    peaks: dict[str, int] = {}  # largest RSS seen (MB, sampled every 0.2 s) by what the job was doing
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            status = Path("/proc/self/status").read_text().splitlines()
            rss = next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))
            peaks[stage["name"]] = max(peaks.get(stage["name"], 0), rss)

    def report(progress: Progress) -> None:
        log.append({"t": round(time.monotonic() - started, 1), "step": progress.step, "best": progress.best, "message": progress.message,
                    "vmhwm_mb": peak_memory_mb()["vmhwm_mb"]})
        stage["name"] = f"{progress.stage} {progress.step}"
        if progress.step % 10 == 0 or progress.stage != "training":
            print(f"{time.monotonic() - started:7.1f}s {progress.stage} {progress.step}/{progress.total} {progress.message}"
                  f" (peak so far {log[-1]['vmhwm_mb']} MB)", flush=True)

    threading.Thread(target=sample, daemon=True).start()
    load_before = os.getloadavg()
    result = KokoroVoicepackTrainer().run(spec, report, lambda: False)  # type: ignore[arg-type]
    done.set()
    peak = {**peak_memory_mb(), "rss_by_stage_mb": peaks}
    training = {"minutes": round((time.monotonic() - started) / 60, 1), "load_before": load_before, "load_after": os.getloadavg(),
                "peak_rss_mb": peak["vmhwm_mb"], **peak, "train_metrics": result.metrics,
                "voicepack": str(result.outputs[0]), "progress": log}
    into.write_text(json.dumps(training, indent=2))
    return 0


def _mono(read: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    audio, rate = read
    return (audio.mean(axis=1) if audio.ndim == 2 else audio), rate


if __name__ == "__main__":
    raise SystemExit(main())
