"""``voice-agent samples ...``: a profile's samples on disk (the agent may be running), through
the record path's own commands, the ones the agent answers over MQTT."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.cli.host import existing_layout
from agent.commands import Command, record_commands
from agent.errors import ServiceError
from agent.settings import AgentSettings
from providers import registry
from providers.base import ProviderError


def add_parser(sub: Any) -> None:
    profile = argparse.ArgumentParser(add_help=False)  # -p before or after the action
    profile.add_argument("-p", "--profile", default=argparse.SUPPRESS,
                         help="profile: a folder under $VOICE_AGENT_HOME/profiles (default: default)")
    # No set_defaults(profile=...): the parents share one action, and a default set on it would
    # let the action's parser overwrite a -p given before the action.
    samples = sub.add_parser("samples", parents=[profile], help="list, inspect, delete and export recorded samples")
    actions = samples.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[profile], help="kept samples, newest first")
    listing.add_argument("--order", choices=["created", "score", "duration"], default="created",
                         help="newest first, best score first or longest first (default: created)")
    listing.add_argument("--limit", type=int, default=50, help="rows at most, 1-10000 (default: 50)")
    listing.add_argument("--min-score", type=float,
                         help="only samples scoring at least this, 0-100 (default: every score)")
    for name, text in (("show", "one sample's metadata"), ("play-path", "the WAV file of a sample")):
        action = actions.add_parser(name, parents=[profile], help=text)
        action.add_argument("sample", help="a sample id, as samples list shows it")
    delete = actions.add_parser("delete", parents=[profile], help="delete samples by id, or all below a score")
    delete.add_argument("samples", nargs="*", help="sample ids, as samples list shows them")
    delete.add_argument("--below", type=float, help="also every sample scoring below this, 0-100 (default: none)")
    export = actions.add_parser("export", parents=[profile], help="write a training dataset (replaces the target directory)")
    export.add_argument("target", choices=[s.name for s in registry.SPECS if s.dataset is not None],
                        help="the provider whose dataset to write")
    export.add_argument("--speaker", default="default",
                        help="whose voice: the dataset's folder name, letters, digits, _ and - (default: default)")
    export.add_argument("--best", type=int,
                        help="samples at most, best first, 1-10000 (default: every one the provider takes)")
    export.add_argument("--min-score", type=float,
                        help="only samples scoring at least this, 0-100 (default: every score)")
    export.add_argument("--samples", nargs="*", help="these sample ids instead (default: the best, as above)")
    actions.add_parser("readiness", parents=[profile], help="is there enough audio to train each provider?")
    actions.add_parser("report", parents=[profile], help="write a PNG and a text summary of the samples")
    enroll = actions.add_parser("enroll", parents=[profile], help="set the owner's reference voice from a WAV file")
    enroll.add_argument("wav", type=Path, help="a WAV file of the owner speaking (at most VOICE_AGENT_MAX_AUDIO_BYTES)")


class _NoAudio:
    """The record commands produce no speech."""

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None: ...

    def whole(self, request_id: str, wav: bytes) -> None: ...

    def where(self, request_id: str, stream: bool) -> str:
        return ""


def run(settings: AgentSettings, args: argparse.Namespace) -> int:
    from agent.config.store import ConfigStore
    from agent.events import EventBus, StateBoard
    from agent.record.samples import SampleService
    from agent.record.service import RecordService

    args.profile = getattr(args, "profile", "default")
    layout = existing_layout(settings, args.profile)
    if layout is None:
        return 1
    events = EventBus()
    configs = ConfigStore(layout, events)
    records = RecordService(layout, configs, events, StateBoard(), 1)
    samples = SampleService(records, layout, configs, events)
    commands = record_commands(records, samples)
    try:
        print(_dispatch(args, commands))
    except (ServiceError, ProviderError, ValidationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        samples.stop()
        records.stop()
    return 0


def _call(commands: dict[str, Command], name: str, profile: str, payload: dict[str, Any]) -> dict[str, Any]:
    command = commands[name]
    result = command.run(profile, command.model.model_validate(payload), _NoAudio())
    return result.result() if isinstance(result, Future) else result


def _dispatch(args: argparse.Namespace, commands: dict[str, Command]) -> str:
    profile = args.profile
    if args.action == "list":
        rows = _call(commands, "samples.list", profile,
                     {"order": args.order, "limit": args.limit, "min_score": args.min_score})["samples"]
        lines = [f"{'id':24} {'score':>5} {'secs':>5} {'similarity':>10}  transcript"]
        for s in rows:
            sim = "" if s["speaker_similarity"] is None else f"{s['speaker_similarity']:.2f}"
            lines.append(f"{s['id']:24} {s['score']:5.0f} {s['duration']:5.1f} {sim:>10}  {(s['transcript'] or '')[:50]}")
        return "\n".join(lines)
    if args.action in ("show", "play-path"):
        shown = _call(commands, "samples.show", profile, {"sample": args.sample})
        return str(shown["path"]) if args.action == "play-path" else _json(shown)
    if args.action == "delete":
        return _json(_call(commands, "samples.delete", profile, {"samples": args.samples, "below": args.below}))
    if args.action == "export":
        return _json(_call(commands, "samples.export", profile, {
            "target": args.target, "speaker": args.speaker, "samples": args.samples or None, "best": args.best,
            "min_score": args.min_score}))
    if args.action == "readiness":
        return _json(_call(commands, "samples.readiness", profile, {})["readiness"])
    if args.action == "report":
        result = _call(commands, "samples.report", profile, {})
        return str(result["text"]) + f"picture: {result['png']}"
    _call(commands, "speaker.enroll", profile, {"audio": args.wav.read_bytes()})
    return f"enrolled {args.wav} as the voice of profile {profile}"


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, default=str)
