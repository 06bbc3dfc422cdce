"""``voice-agent voices import PATH``: install a voice from a file, folder or archive, on the disk
alone (no agent needed, as ``voice-agent voices`` lists them); the running agent finds it by name
on its next request."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.errors import ServiceError
from agent.settings import AgentSettings


def add_import_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``voices import``'s arguments."""
    parser = sub.add_parser(
        "import", help="install a Piper .onnx + .onnx.json, a Kokoro .pt/.npy or voices-v1.0.bin, an RVC .pth (+ .index), "
                       "or a zip/tar or folder of them",
    )
    parser.add_argument("path", type=Path, help="the file, folder or archive (.zip, .tar, .tar.gz)")
    parser.add_argument("--name", help="the voice's name, when the file's is not it (one voice only)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-p", "--profile", dest="import_profile", default="default",
                       help="profile whose voices get it: profiles/<P>/out/voices (default: default)")
    where.add_argument("--household", action="store_true", help="every profile's voices instead: out/voices")
    parser.add_argument("--replace", action="store_true", help="replace an installed voice of the same name")


def run_import(settings: AgentSettings, args: argparse.Namespace) -> int:
    """Prints each installed voice and its files; a refusal's code and reason on stderr, exit 1."""
    from agent.cli.host import existing_layout
    from agent.voices.imports import ImportOptions, import_voices, limits_for

    layout = existing_layout(settings, args.import_profile)
    if layout is None:
        return 1
    target = layout.household_voices if args.household else layout.voices_dir(args.import_profile)
    try:
        installed = import_voices(args.path.absolute(), target, ImportOptions(args.name, args.replace),
                                  limits_for(settings.voice_import_max_mb))
    except ServiceError as exc:
        print(f"error: ({exc.code}) {exc}", file=sys.stderr)
        return 1
    for entry in installed:
        print(f"imported {entry['provider']} voice {entry['name']}: {', '.join(entry['files'])}")
    return 0
