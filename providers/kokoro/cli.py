"""``voice-agent kokoro ...``: prepare the model for this machine, train a voicepack by hand.

``train-voicepack`` runs the trainer in this process (the agent's job runner runs the same
trainer in a subprocess), with a progress bar, a log and a status file under
``logs/run/kokoro-training-<speaker>.{log,json}``. Ctrl-C stops at a checkpoint; running the
same command again resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent.settings import AgentSettings

log = logging.getLogger(__name__)

DATASETS = "kokoro-datasets"
VOICEPACKS = "kokoro-voicepacks"


def add_parser(sub: Any) -> None:
    kokoro = sub.add_parser("kokoro", help="prepare the Kokoro model, train a Kokoro voicepack")
    actions = kokoro.add_subparsers(dest="action", required=True)
    prepare = actions.add_parser("prepare", help="assemble the model, fold it to float and time both here (once)")
    prepare.add_argument("-p", "--profile", default="default")
    train = actions.add_parser("train-voicepack", help="train a voicepack that sounds like the profile's samples")
    train.add_argument("-p", "--profile", default="default")
    train.add_argument("--speaker", default="default", help="dataset out/voices/kokoro-datasets/<speaker>")
    train.add_argument("--dataset", type=Path, help="any folder of WAVs (with metadata.csv file|text) instead")
    train.add_argument("--epochs", type=int, help="gradient steps, one sentence each (default 60)")
    train.add_argument("--learning-rate", type=float, help="Adam step in stock-voice standard deviations (default 0.3)")
    train.add_argument("--base-voice", help="start voice or blend (default: the closest stock voice)")
    train.add_argument("--check-every", type=int, help="steps between checks on the real engine (default 10)")
    train.add_argument("--lines", type=int, help="sentences each check says (default 3)")
    train.add_argument("--max-samples", type=int)
    train.add_argument("--device", choices=["cpu", "cuda"])
    train.add_argument("--lang", choices=list("abefhijpz"), help="language the voicepack speaks (default a)")
    train.add_argument("--min-minutes", type=float)
    train.add_argument("--min-samples", type=int)
    train.add_argument("--use", action="store_true", help="switch the profile's Kokoro voice to the result")


def run(settings: AgentSettings, args: argparse.Namespace) -> int:
    from agent.profiles import Profiles

    profiles = Profiles(settings.home)
    if not profiles.exists(args.profile):
        print(f"error: no profile {args.profile!r} under {profiles.root}", file=sys.stderr)
        return 1
    if args.action == "prepare":
        return _prepare(profiles, args.profile)
    return _train(settings, profiles, args)


def _prepare(profiles: Any, profile: str) -> int:
    from agent.config_store import ConfigStore
    from providers.base import ProviderError
    from providers.kokoro.engine import KokoroProvider

    kokoro = ConfigStore.load_quietly(profiles, profile).tts.kokoro
    provider = KokoroProvider()
    try:
        provider.preload(kokoro, profiles.provider_context(profile))
        runtime = provider.runtime(kokoro, profiles.provider_context(profile))
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(runtime.timings.items())) or "not timed"
    print(f"Kokoro runs {runtime.path} ({runtime.variant}, {runtime.threads} threads; calibration: {timings})")
    return 0


def _train(settings: AgentSettings, profiles: Any, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from agent.train.base import TrainSpec
    from providers.kokoro.voicepack_trainer import (
        DatasetError,
        KokoroVoicepackTrainer,
        VoicepackParams,
    )

    if not args.speaker.replace("-", "").replace("_", "").isalnum():
        print(f"error: speaker must be a plain name: {args.speaker!r}", file=sys.stderr)
        return 1
    profile_dir = profiles.directory(args.profile)
    voices = profile_dir / "out" / "voices"
    dataset = args.dataset or voices / DATASETS / args.speaker
    if not dataset.is_dir():
        print(f"error: no dataset at {dataset}: run `voice-agent samples export kokoro --speaker {args.speaker} "
              f"-p {args.profile}` first, or pass --dataset", file=sys.stderr)
        return 1
    given = {"epochs": args.epochs, "learning_rate": args.learning_rate, "base_voice": args.base_voice,
             "max_samples": args.max_samples, "device": args.device, "lang_code": args.lang,
             "min_minutes": args.min_minutes, "min_samples": args.min_samples, "check_every": args.check_every,
             "lines": args.lines}
    try:
        params = VoicepackParams.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    spec = TrainSpec(
        profile=args.profile, speaker=args.speaker, dataset_dir=dataset, output_dir=voices / VOICEPACKS / args.speaker,
        checkpoint_dir=profile_dir / "out" / "training" / f"kokoro-cli-{args.speaker}",
        params=params.model_dump(), device=params.device,
    )
    status = _Status(settings.home, args.speaker)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    status.start(spec)
    try:
        result = KokoroVoicepackTrainer().run(spec, status.report, stop.is_set)
    except DatasetError as exc:
        status.finish("failed", error=str(exc))
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        log.exception("training failed")
        status.finish("failed", error=f"{type(exc).__name__}: {exc}")
        print(f"\nerror: {exc} (see {status.log_path})", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
        status.close()
    status.finish(result.status, outputs=[str(p) for p in result.outputs], metrics=result.metrics)
    print(file=sys.stderr)
    if result.status == "stopped":
        print("stopped at a checkpoint; run the same command again to resume")
        return 130
    print(f"voicepack {result.outputs[0]}: similarity {result.metrics['similarity']:.3f} "
          f"(start {result.metrics['start_similarity']:.3f})")
    if args.use:
        _use_voicepack(profiles.config_path(args.profile), result.outputs[0], params.lang_code)
        print(f"profile {args.profile} now speaks Kokoro with it")
    return 0


def _use_voicepack(config_path: Path, pack: Path, lang_code: str) -> None:
    """Point the profile's voice.json at the voicepack (the agent reloads it by itself)."""
    from agent.atomic import atomic_write_text
    from agent.voice_config import read_json_object

    document = read_json_object(config_path)
    tts = document.setdefault("tts", {})
    section = tts.setdefault("kokoro", {})
    section.update(useCustomVoicepack=True, voicepackPath=str(pack.resolve()), langCode=lang_code)
    tts["provider"] = "kokoro"
    atomic_write_text(config_path, json.dumps(document, indent=2) + "\n")


class _Status:
    """The progress bar, the status JSON and the log file of one CLI training run."""

    def __init__(self, home: Path, speaker: str) -> None:
        from agent.atomic import atomic_write_text
        from agent.train.jobs import StatusFile

        files = StatusFile.at(home, "kokoro", speaker)  # the same files the job runner keeps
        self._write = atomic_write_text
        self.json_path, self.log_path = files.json_path, files.log_path
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.FileHandler(self.log_path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(self._handler)
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
        self._state: dict[str, Any] = {}

    def start(self, spec: Any) -> None:
        self._state = {"provider": "kokoro", "profile": spec.profile, "speaker": spec.speaker, "state": "running",
                       "started": time.time(), "updated": time.time(), "dataset": str(spec.dataset_dir), "params": spec.params}
        self._save()

    def report(self, progress: Any) -> None:
        self._state.update(stage=progress.stage, step=progress.step, total=progress.total, best=progress.best,
                           message=progress.message, updated=time.time())
        self._save()
        log.info("%s %d/%d %s", progress.stage, progress.step, progress.total, progress.message)
        width = 30
        done = int(width * progress.step / max(progress.total, 1))
        sys.stderr.write(f"\r{progress.stage:10} [{'#' * done}{'.' * (width - done)}] {progress.step}/{progress.total} {progress.message[:50]:50}")
        sys.stderr.flush()

    def finish(self, state: str, **extra: Any) -> None:
        self._state.update(state=state, updated=time.time(), **extra)
        self._save()

    def close(self) -> None:
        logging.getLogger().removeHandler(self._handler)
        self._handler.close()

    def _save(self) -> None:
        self._write(self.json_path, json.dumps(self._state, indent=2, default=str) + "\n")
