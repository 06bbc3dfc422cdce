"""``voice-agent``: run the daemon, talk to it over MQTT, inspect voices and config; each
provider in the registry adds its own subcommands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from agent import __version__
from agent.settings import AgentSettings, SettingsError, load_settings
from providers import registry


PROFILE_HELP = "profile: a folder under $VOICE_AGENT_HOME/profiles (default: default)"


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; each option's help says its range, unit and default."""
    parser = argparse.ArgumentParser(prog="voice-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voice-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the agent (the systemd service runs this)")

    say = sub.add_parser("say", help="speak text through the running agent and save the audio")
    say.add_argument("text", help="what to say (at most VOICE_AGENT_MAX_TEXT_CHARS characters, 5000 unless set)")
    say.add_argument("-o", "--output", type=Path, default=Path("say.wav"), help="WAV file to write (default: say.wav)")
    say.add_argument("-p", "--profile", default="default", help=PROFILE_HELP)
    say.add_argument("--provider", choices=[*registry.NAMES, *registry.ALIASES],
                     help="who speaks (default: the profile's tts.provider)")
    say.add_argument("--voice", help="a voice name, no paths (default: the profile's voice for that provider)")
    say.add_argument("--speed", type=float, help="speaking rate, 0.5-2.0 (1.0 is normal speed; default: the profile's)")
    say.add_argument("--stream", action="store_true",
                     help="ask for one WAV per sentence, joined in the file (default: one WAV)")
    say.add_argument("--timeout", type=seconds, default=60.0, help="seconds to wait for the answer, > 0 (default: 60)")
    say.add_argument("--strict", action="store_true",
                     help="exit 3 when another voice spoke than the one asked for (a fallback), audio saved all the same "
                          "(default: exit 0 and print the fallback's reason)")

    from agent.cli.voices import add_parser as add_voices_parser

    add_voices_parser(sub)

    check = sub.add_parser("config", help="validate voice.json for a profile and print the merged result")
    check.add_argument("-p", "--profile", default="default", help=PROFILE_HELP)

    from agent.cli.samples import add_parser as add_samples_parser
    from agent.cli.train import add_parsers as add_train_parsers

    add_samples_parser(sub)
    add_train_parsers(sub)
    for spec in registry.SPECS:
        if spec.cli is not None:
            spec.cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        for line in str(exc).splitlines():
            print(f"invalid agent settings: {line}", file=sys.stderr)
        return 2
    # The daemon logs what it does; a command says what it did, and logs only problems (or all, at DEBUG).
    level = settings.log_level if args.command == "run" or settings.log_level == "DEBUG" else "WARNING"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return _run(settings, args)


def _run(settings: AgentSettings, args: argparse.Namespace) -> int:
    if args.command == "run":
        from agent.daemon import run

        return run(settings)
    if args.command == "say":
        return _say(settings, args)
    if args.command == "voices":
        from agent.cli.voices import run as run_voices

        return run_voices(settings, args)
    if args.command == "config":
        return _config(settings, args.profile)
    if args.command in ("train", "gpu"):
        from agent.cli.train import run_gpu, run_train

        return run_train(settings, args) if args.command == "train" else run_gpu(settings, args)
    if args.command == "samples":
        from agent.cli.samples import run as run_samples

        return run_samples(settings, args)
    from agent.cli.host import AgentHost

    cli = registry.spec(args.command).cli
    assert cli is not None
    return cli.run(AgentHost(settings), args)


def _say(settings: AgentSettings, args: argparse.Namespace) -> int:
    from agent.mqtt.client import request_or_report
    from providers.common.audio import read_wav_pcm, wav_bytes

    payload = {"text": args.text, "stream": args.stream}
    for key in ("provider", "voice", "speed"):
        if getattr(args, key) is not None:
            payload[key] = getattr(args, key)
    reply = request_or_report(settings, args.profile, "speak", payload, args.timeout)
    if reply is None:
        return 1
    if reply.chunks:
        parts = [read_wav_pcm(reply.chunks[i]) for i in sorted(reply.chunks)]
        audio = wav_bytes(b"".join(p for p, _ in parts), parts[0][1])
    else:
        audio = reply.audio or b""
    args.output.write_bytes(audio)
    data = reply.response["data"]
    print(
        f"{args.output}: {data['audio_seconds']:.2f} s from {data['provider']}/{data['voice']}"
        f"{' (cached)' if data['cached'] else ''}{' (fallback)' if data['fallback'] else ''}"
        f" in {data['latency_ms']:.0f} ms"
    )
    if data["fallback"]:
        print(f"fallback: {data.get('fallback_code') or 'provider_error'}: {data.get('fallback_reason') or ''}")
        if args.strict:
            return 3
    return 0


def _config(settings: AgentSettings, profile: str) -> int:
    from agent.cli.host import existing_layout
    from agent.config.model import ConfigError, load_voice_config

    layout = existing_layout(settings, profile)
    if layout is None:
        return 1
    try:
        config = load_voice_config(layout.global_config, layout.profile_config(profile))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print(json.dumps(config.model_dump(mode="json", by_alias=True), indent=2))
    return 0
