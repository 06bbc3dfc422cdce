"""``voice-agent kokoro ...``: prepare the model for this machine, train a voicepack by hand.

``train-voicepack`` goes through the job runner like any training job (the running agent's, or
in the foreground when no agent runs here), so it keeps the same log and status file
(``logs/run/kokoro-training-<speaker>.{log,json}``); Ctrl-C stops at a checkpoint and running
the same command again resumes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from providers.spec import CliError, CliHost


def add_parser(sub: Any) -> None:
    kokoro = sub.add_parser("kokoro", help="prepare the Kokoro model, train a Kokoro voicepack")
    actions = kokoro.add_subparsers(dest="action", required=True)
    prepare = actions.add_parser("prepare", help="assemble the model, fold it to float and time both here (once)")
    prepare.add_argument("-p", "--profile", default="default",
                         help="profile: a folder under $VOICE_AGENT_HOME/profiles (default: default)")
    train = actions.add_parser("train-voicepack", help="train a voicepack that sounds like the profile's samples")
    train.add_argument("-p", "--profile", default="default",
                       help="profile: a folder under $VOICE_AGENT_HOME/profiles (default: default)")
    train.add_argument("--speaker", default="default",
                       help="dataset out/voices/kokoro-datasets/<speaker> and the voicepack's name (default: default)")
    train.add_argument("--dataset", type=Path,
                       help="any folder of WAVs (with metadata.csv file|text) instead (default: the speaker's export)")
    train.add_argument("--epochs", type=int, help="gradient steps, one sentence each, 1-20000 (default: 60)")
    train.add_argument("--learning-rate", type=float,
                       help="Adam step in stock-voice standard deviations, above 0 up to 2 (default: 0.3)")
    train.add_argument("--base-voice", help="start voice or blend (default: the closest stock voice)")
    train.add_argument("--check-every", type=int, help="steps between checks on the real engine, 1-1000 (default: 10)")
    train.add_argument("--lines", type=int, help="sentences each check says, 1-8 (default: 3)")
    train.add_argument("--max-samples", type=int, help="samples that describe the target voice, 1-1000 (default: 20)")
    train.add_argument("--memory", choices=["auto", "low", "fast"],
                       help="low: about 3 GB, twice the CPU a step; fast: about 7.5 GB; auto (default): fast where "
                            "the job finds the memory for it")
    train.add_argument("--device", choices=["cpu", "cuda"], help="where the speaker encoder runs (default: cpu)")
    train.add_argument("--lang", choices=list("abefhijpz"), help="language the voicepack speaks (default: a)")
    train.add_argument("--min-minutes", type=float, help="refuse datasets with less speech, 0-600 minutes (default: 5)")
    train.add_argument("--min-samples", type=int, help="refuse datasets with fewer WAVs, 1-10000 (default: 10)")
    train.add_argument("--use", action="store_true",
                       help="switch the profile's Kokoro voice to the result (default: leave voice.json as it is)")


def run(host: CliHost, args: argparse.Namespace) -> int:
    try:
        return _prepare(host, args.profile) if args.action == "prepare" else _train(host, args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _prepare(host: CliHost, profile: str) -> int:
    from providers.base import ProviderError
    from providers.kokoro.config import KokoroSettings
    from providers.kokoro.engine import KokoroProvider

    ctx = host.context(profile)
    settings = host.provider_settings(profile, "kokoro")
    assert isinstance(settings, KokoroSettings)
    provider = KokoroProvider()
    try:
        runtime = provider.runtime(settings, ctx)  # prepared here, before the agent's first request
        provider.preload(settings, ctx)
    except ProviderError as exc:
        raise CliError(str(exc)) from exc
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(runtime.timings.items())) or "not timed"
    print(f"Kokoro runs {runtime.path} ({runtime.variant}, {runtime.threads} threads; calibration: {timings})")
    return 0


def _train(host: CliHost, args: argparse.Namespace) -> int:
    given = {"epochs": args.epochs, "learningRate": args.learning_rate, "baseVoice": args.base_voice,
             "maxSamples": args.max_samples, "device": args.device, "langCode": args.lang,
             "minMinutes": args.min_minutes, "minSamples": args.min_samples, "checkEvery": args.check_every,
             "lines": args.lines, "memory": args.memory}
    params = {k: v for k, v in given.items() if v is not None}
    done = host.train(args.profile, "kokoro", args.speaker, params, args.dataset)
    pack = next(p for p in done.outputs if p.suffix == ".npy")
    print(f"voicepack {pack}: similarity {done.metrics['similarity']:.3f} (start {done.metrics['start_similarity']:.3f})")
    if args.use:
        lang = args.lang or "a"
        host.update_voice_config(args.profile, {"tts": {"provider": "kokoro", "kokoro": {
            "useCustomVoicepack": True, "voicepackPath": str(pack.resolve()), "langCode": lang}}})
        print(f"profile {args.profile} now speaks Kokoro with it")
    return 0
