"""``voice-agent samples ...``: manage a profile's samples on disk (the agent may be running)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.mqtt.router import RequestError
from agent.profiles import Profiles
from agent.record import manage
from agent.record.store import SampleStore
from agent.settings import AgentSettings


def add_parser(sub: Any) -> None:
    samples = sub.add_parser("samples", help="list, inspect, delete and export recorded samples")
    samples.add_argument("-p", "--profile", default="default")
    actions = samples.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="kept samples, newest first")
    listing.add_argument("--order", choices=["created", "score", "duration"], default="created")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--min-score", type=float)
    for name, text in (("show", "one sample's metadata"), ("play-path", "the WAV file of a sample")):
        action = actions.add_parser(name, help=text)
        action.add_argument("sample")
    delete = actions.add_parser("delete", help="delete samples by id, or all below a score")
    delete.add_argument("samples", nargs="*")
    delete.add_argument("--below", type=float)
    export = actions.add_parser("export", help="write a training dataset (replaces the target directory)")
    export.add_argument("target", choices=["rvc", "kokoro", "sovits"])
    export.add_argument("--speaker", default="default")
    export.add_argument("--best", type=int)
    export.add_argument("--min-score", type=float)
    export.add_argument("--samples", nargs="*")
    actions.add_parser("readiness", help="is there enough audio to train each provider?")
    actions.add_parser("report", help="write a PNG and a text summary of the samples")
    enroll = actions.add_parser("enroll", help="set the owner's reference voice from a WAV file")
    enroll.add_argument("wav", type=Path)


def run(settings: AgentSettings, args: argparse.Namespace) -> int:
    from agent.cli import existing_profiles
    from agent.config_store import ConfigStore

    profiles = existing_profiles(settings, args.profile)
    if profiles is None:
        return 1
    threshold = ConfigStore.load_quietly(profiles, args.profile).record.threshold
    store = SampleStore(profiles.directory(args.profile))
    try:
        result = _dispatch(args, store, profiles, threshold)
    except (RequestError, ValidationError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if isinstance(result, str):
        print(result, end="" if result.endswith("\n") else "\n")
    else:
        print(json.dumps(result, indent=2, default=str))
    return 0


def _dispatch(args: argparse.Namespace, store: SampleStore, profiles: Profiles, threshold: float) -> Any:
    profile_dir = profiles.directory(args.profile)
    if args.action == "list":
        listing = manage.ListRequest(order=args.order, limit=args.limit, min_score=args.min_score)
        rows = manage.list_samples(store, listing)["samples"]
        lines = [f"{'id':24} {'score':>5} {'secs':>5} {'similarity':>10}  transcript"]
        for s in rows:
            sim = "" if s["speaker_similarity"] is None else f"{s['speaker_similarity']:.2f}"
            lines.append(f"{s['id']:24} {s['score']:5.0f} {s['duration']:5.1f} {sim:>10}  {(s['transcript'] or '')[:50]}")
        return "\n".join(lines)
    if args.action == "show":
        return manage.show_sample(store, manage.ShowRequest(sample=args.sample))
    if args.action == "play-path":
        return manage.show_sample(store, manage.ShowRequest(sample=args.sample))["path"]
    if args.action == "delete":
        return manage.delete_samples(store, manage.DeleteRequest(samples=args.samples, below=args.below))
    if args.action == "export":
        request = manage.ExportRequest(
            target=args.target, speaker=args.speaker, samples=args.samples or None, best=args.best, min_score=args.min_score
        )
        return manage.export_samples(store, profile_dir, request)
    if args.action == "readiness":
        return manage.readiness(store, threshold)["readiness"]
    if args.action == "report":
        result = manage.report(store, args.profile, profile_dir, threshold)
        return result["text"] + f"picture: {result['png']}\n"
    return _enroll(store, args.wav, profiles, args.profile)


def _enroll(store: SampleStore, wav: Path, profiles: Profiles, profile: str) -> str:
    from agent.record.analysis import embed_wav
    from agent.record.vad import VadOptions

    embedding = embed_wav(wav.read_bytes(), VadOptions())
    store.set_enrolled(embedding)
    return f"enrolled {wav} as the voice of profile {profile}"
