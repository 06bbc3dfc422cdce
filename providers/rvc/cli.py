"""``voice-agent rvc validate PATH`` and ``voice-agent rvc suggest-pitch``: work on files on
disk, no running agent needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from providers.spec import CliError, CliHost


def add_parser(sub: Any) -> None:
    rvc = sub.add_parser("rvc", help="check RVC models and suggest a pitch shift")
    actions = rvc.add_subparsers(dest="action", required=True)
    check = actions.add_parser("validate", help="is this .pth an RVC model, and does its .index fit?")
    check.add_argument("path", type=Path, help="a .pth file, or a speaker folder holding one")
    check.add_argument("--index", type=Path, help="the .index to check with it (default: the one beside it)")
    pitch = actions.add_parser("suggest-pitch", help="semitones from the base voice to the owner's samples")
    pitch.add_argument("-p", "--profile", default="default",
                       help="profile: a folder under $VOICE_AGENT_HOME/profiles (default: default)")
    pitch.add_argument("--base", choices=["piper", "kokoro"], help="base engine (default: tts.rvc.baseProvider)")
    pitch.add_argument("--voice", help="base voice (default: tts.rvc.baseVoice)")


def run(host: CliHost, args: argparse.Namespace) -> int:
    if args.action == "validate":
        return _validate(args.path, args.index)
    return _suggest(host, args)


def _validate(path: Path, index: Path | None) -> int:
    from providers.rvc.assets import pick_index

    if path.is_dir():
        models = sorted(path.glob("*.pth"))
        preferred = [p for p in models if p.stem in (path.name, "default")]
        if not models or (len(models) > 1 and not preferred):
            print(f"error: {path} holds {len(models)} .pth files; name one", file=sys.stderr)
            return 1
        model = (preferred or models)[0]
        index = index or pick_index(path, path.name)
    else:
        model = path
        if index is None and path.parent.is_dir():
            index = pick_index(path.parent, path.stem)
    try:
        from providers.rvc.validate import validate
    except ImportError as exc:
        print(f"error: validating needs packages that are not installed ({exc.name}): pip install 'voice-agent[rvc]'",
              file=sys.stderr)
        return 2
    report = validate(model, index)
    print(report.text(), end="")
    return 0 if report.ok else 1


def _suggest(host: CliHost, args: argparse.Namespace) -> int:
    from providers.base import ProviderError
    from providers.registry import create_provider
    from providers.rvc.autopitch import suggest
    from providers.rvc.config import RvcSettings
    from providers.rvc.engine import base_settings

    try:
        ctx = host.context(args.profile)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rvc = host.provider_settings(args.profile, "rvc")
    assert isinstance(rvc, RvcSettings)
    update: dict[str, object] = {}
    if args.base:
        update["base_provider"] = args.base
    if args.voice:
        update["base_voice"] = args.voice
    rvc = rvc.model_copy(update=update)
    try:
        base = create_provider(rvc.base_provider)
        found = suggest(base, base_settings(rvc), ctx)
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(found.describe())
    print(f'set it with "pitchShift": {found.semitones} in tts.rvc, or use "pitchShift": "auto"')
    return 0
