"""``voice-agent voices``: the installed and downloadable voices (the disk and the catalog, no
agent needed), ``voices download NAME...`` (through the running agent, or here in the foreground
when none runs), ``voices catalog --update`` and ``voices import PATH`` (on the disk alone: the
running agent finds the voice by name on its next request)."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from agent.errors import ServiceError
from agent.settings import AgentSettings
from providers import registry

PROFILE_HELP = "profile: a folder under $VOICE_AGENT_HOME/profiles (default: default)"
FINAL = ("voices.download.finished", "voices.download.failed")


def add_parser(sub: Any) -> None:
    voices = sub.add_parser("voices", help="list voices (reads the disk and the catalogs; no agent needed), "
                                           "download catalog voices, update the catalog")
    voices.add_argument("-p", "--profile", default="default", help=PROFILE_HELP)
    voices.add_argument("--catalog", action="store_true", help="also list catalog voices that are not installed (default: installed ones only)")
    voices.add_argument("--lang", default="", help="only this language: a family (en) or a code (en_US) (default: every language)")
    voices.add_argument("--provider", choices=registry.NAMES, help="only this provider's voices (default: every provider's)")
    actions = voices.add_subparsers(dest="action")
    download = actions.add_parser("download", help="download catalog voices (through the agent when it runs)")
    download.add_argument("names", nargs="+", help="catalog voice names, e.g. en_US-lessac-medium af_heart")
    # one destination per option at every level: SUPPRESS keeps the value given before the subcommand
    download.add_argument("--provider", choices=registry.NAMES, default=argparse.SUPPRESS,
                          help="whose catalog (default: --provider before `download`, else the first that has the name)")
    download.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for all (default: 3600)")
    catalog = actions.add_parser("catalog", help="show the catalogs' sizes; --update fetches newer ones")
    catalog.add_argument("--update", action="store_true", help="fetch Piper's voices.json from the voices URL (default: only show the catalogs' sizes)")
    add_import_parser(actions)


def run(settings: AgentSettings, args: argparse.Namespace) -> int:
    from agent.cli.host import existing_layout

    layout = existing_layout(settings, args.profile)
    if layout is None:
        return 1
    if args.action == "download":
        payload: dict[str, Any] = {"names": args.names}
        if args.provider:
            payload["provider"] = args.provider
        return _through_agent_or_here(settings, args.profile, "voices.download", payload, args.timeout)
    if args.action == "import":
        return run_import(settings, args)
    if args.action == "catalog":
        return _through_agent_or_here(settings, args.profile, "voices.catalog", {"update": args.update}, 300.0)
    return _list(settings, args)


def _list(settings: AgentSettings, args: argparse.Namespace) -> int:
    from agent.layout import Layout
    from agent.speak.engines import ProviderPool, list_voices
    from agent.voices.catalog import Catalog
    from agent.voices.listing import listing

    layout = Layout(settings.home)
    installed, problems = list_voices(ProviderPool(), layout.provider_context(args.profile))
    for voice in listing(installed, Catalog.for_settings(settings), with_catalog=args.catalog, provider=args.provider,
                         language=args.lang):
        mark = "installed" if voice["installed"] else f"{voice['size'] / 1e6:.0f} MB" if voice["size"] else "download"
        print(f"{voice['provider']:7} {voice['name']:32} {voice['language']:8} {mark:>10}  "
              f"{voice['location'] or voice['description']}")
    for provider, problem in problems.items():
        print(f"{provider:7} (unavailable: {problem})")
    return 0


def agent_runs(settings: AgentSettings) -> bool:
    """Whether an agent holds this home's lock (it answers over MQTT)."""
    from agent.layout import Layout
    from agent.lockfile import hold

    handle = hold(Layout(settings.home).agent_lock)
    if handle is None:
        return True
    handle.close()
    return False


def _through_agent_or_here(settings: AgentSettings, profile: str, command: str, payload: dict[str, Any],
                           timeout: float) -> int:
    if agent_runs(settings):
        return _through_agent(settings, profile, command, payload, timeout)
    return _here(settings, profile, command, payload, timeout)


class Progress:
    """Download events as lines on stderr (a bar where stderr is a terminal), ends on stdout."""

    def __init__(self) -> None:
        self._shown: dict[str, int] = {}

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        voice = f"{data.get('provider')}/{data.get('name')}"
        if name == "voices.download.started":
            print(f"{voice}: downloading {int(data.get('total') or 0) / 1e6:.1f} MB", file=sys.stderr)
        elif name == "voices.download.progress":
            total, done = int(data.get("total") or 0), int(data.get("done") or 0)
            percent = int(100 * done / total) if total else 0
            if percent // 10 > self._shown.get(voice, -1) or done == total:  # a line per tenth
                self._shown[voice] = percent // 10
                bar = "#" * (percent // 5)
                print(f"{voice}: [{bar:<20}] {percent:3d}% {done / 1e6:.1f}/{total / 1e6:.1f} MB", file=sys.stderr)
        elif name == "voices.download.finished":
            print(f"{voice}: downloaded in {data.get('seconds')} s", file=sys.stderr)
        elif name == "voices.download.failed":
            print(f"{voice}: failed ({data.get('code')}): {data.get('message')}", file=sys.stderr)


def _through_agent(settings: AgentSettings, profile: str, command: str, payload: dict[str, Any], timeout: float) -> int:
    import threading

    from agent.mqtt.client import EventFollower, request_or_report

    show = Progress()
    stop = threading.Event()
    try:
        with EventFollower(settings, profile) as events:
            def pump() -> None:
                while not stop.is_set():
                    name, data = events.next()
                    if name.startswith("voices.download."):
                        show(name, data)

            threading.Thread(target=pump, daemon=True).start()
            reply = request_or_report(settings, profile, command, payload, timeout)
    except (ConnectionError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
    if reply is None:
        return 1
    _answer(reply.response.get("data") or {})
    return 0


def _here(settings: AgentSettings, profile: str, command: str, payload: dict[str, Any], timeout: float) -> int:
    """No agent runs: the same service, in this process."""
    from agent.events import EventBus
    from agent.layout import Layout
    from agent.speak.engines import ProviderPool
    from agent.voices.catalog import Catalog
    from agent.voices.installed import InstalledVoices
    from agent.voices.requests import CatalogRequest, DownloadRequest
    from agent.voices.service import VoiceDownloads

    layout = Layout(settings.home)
    pool = ProviderPool()
    show = Progress()
    bus = EventBus()
    bus.listen(lambda p, name, data, when: show(name, data))

    voices = InstalledVoices(lambda provider, ctx: pool.get(provider).voices(ctx))
    downloads = VoiceDownloads(settings, Catalog.for_settings(settings), layout.household_voices, bus,
                               lambda profile, provider, name: voices.has(provider, layout.provider_context(profile), name))
    try:
        future: Future[dict[str, Any]]
        if command == "voices.download":
            future = downloads.download(profile, DownloadRequest.model_validate(payload))
        else:
            future = downloads.refresh_catalog(profile, CatalogRequest.model_validate(payload))
        _answer(future.result(timeout))
    except ServiceError as exc:
        print(f"error ({exc.code}): {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # pydantic's ValidationError: a name that is no voice name
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        downloads.stop()
    return 0


def _answer(data: dict[str, Any]) -> None:
    for voice in data.get("installed", []):
        files = ", ".join(voice.get("files") or []) or "already installed"
        print(f"installed {voice['provider']}/{voice['name']}: {files}")
    if "voices" in data:
        updated = ", ".join(data.get("updated") or []) or "none"
        counts = ", ".join(f"{provider} {count}" for provider, count in sorted(data["voices"].items()))
        print(f"catalogs updated: {updated}; catalog voices: {counts}")


def add_import_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``voices import``'s arguments."""
    parser = sub.add_parser(
        "import", help="install a Piper .onnx + .onnx.json, a Kokoro .pt/.npy or voices-v1.0.bin, an RVC .pth (+ .index), "
                       "or a zip/tar or folder of them",
    )
    parser.add_argument("path", type=Path, help="the file, folder or archive (.zip, .tar, .tar.gz)")
    parser.add_argument("--name", help="the voice's name, when the file's is not it (one voice only; default: the file's name)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-p", "--profile", default=argparse.SUPPRESS,  # the same destination as `voices -p`
                       help="profile whose voices get it: profiles/<P>/out/voices (default: -p before `import`, else default)")
    where.add_argument("--household", action="store_true", help="every profile's voices instead: out/voices (default: the profile's)")
    parser.add_argument("--replace", action="store_true", help="replace an installed voice of the same name (default: keep it, and refuse with voice_exists)")


def run_import(settings: AgentSettings, args: argparse.Namespace) -> int:
    """Prints each installed voice and its files; a refusal's code and reason on stderr, exit 1."""
    from agent.cli.host import existing_layout
    from agent.voices.imports import ImportOptions, import_voices, limits_for

    layout = existing_layout(settings, args.profile)
    if layout is None:
        return 1
    target = layout.household_voices if args.household else layout.voices_dir(args.profile)
    try:
        installed = import_voices(args.path.absolute(), target, ImportOptions(args.name, args.replace),
                                  limits_for(settings.voice_import_max_mb))
    except ServiceError as exc:
        print(f"error: ({exc.code}) {exc}", file=sys.stderr)
        return 1
    for entry in installed:
        print(f"imported {entry['provider']} voice {entry['name']}: {', '.join(entry['files'])}")
    return 0
