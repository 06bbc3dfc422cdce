"""``voice-agent sovits start|stop|restart|status|logs|install``.

The running agent owns the server (it restarts it and stops it with itself), so start, stop,
restart and status are requests to the agent over MQTT; logs and install work on the disk alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from providers.spec import CliError, CliHost


def add_parser(sub: Any) -> None:
    sovits = sub.add_parser("sovits", help="run and inspect the GPT-SoVITS server (through the running agent)")
    sovits.add_argument("-p", "--profile", default="default", help="whose tts.sovits settings to use (default: default)")
    actions = sovits.add_subparsers(dest="action", required=True)
    for name, text in (("start", "start the server and wait until it answers"), ("restart", "stop, then start")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--no-wait", action="store_true",
                            help="answer right after starting it (default: wait until it answers)")
        action.add_argument("--timeout", type=float, default=600.0,
                            help="seconds to wait for it to answer, > 0 (default: 600)")
    actions.add_parser("stop", help="stop the server the agent started")
    actions.add_parser("status", help="is it running, since when, how often it was restarted")
    logs = actions.add_parser("logs", help="the server's log (logs/run/sovits-server.log)")
    logs.add_argument("-n", "--lines", type=int, default=50, help="last lines to print (default: 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (default: print and stop)")
    setup = actions.add_parser("install", help="clone GPT-SoVITS, make its venv, fetch its models (needs network)")
    setup.add_argument("--device", choices=["cpu", "cu124", "cu128"], default="cpu", help="PyTorch build (default: cpu)")
    setup.add_argument("--source", choices=["hf", "hf-mirror", "modelscope"], default="hf",
                       help="where the models come from (default: hf)")
    setup.add_argument("--repo", default=None, help="git URL of GPT-SoVITS, a mirror (default: its GitHub repository)")
    setup.add_argument("--dir", type=Path, default=None, help="install here (default: tts.sovits.installDir)")
    setup.add_argument("--dry-run", action="store_true", help="print the steps only (default: run them)")


def run(host: CliHost, args: argparse.Namespace) -> int:
    from providers.sovits.servers import log_path

    try:
        if args.action == "logs":
            return _logs(log_path(host.context(args.profile).run_dir), args.lines, args.follow)
        if args.action == "install":
            return _install(host, args)
        return _ask_agent(host, args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _ask_agent(host: CliHost, args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {}
    timeout = 30.0
    if args.action in ("start", "restart"):
        payload["wait"] = not args.no_wait
        timeout = args.timeout
    server = host.request(args.profile, f"sovits.{args.action}", payload, timeout)["server"]
    line = f"{server['state']}: {server['url']}"
    if server.get("pid"):
        line += f" (pid {server['pid']}, restarts {server.get('restarts', 0)})"
    if server.get("error"):
        line += f" - {server['error']}"
    print(line)
    if server.get("log"):
        print(f"log: {server['log']}")
    return 0 if server["state"] in ("running", "external", "stopped", "starting") else 1


def _logs(path: Path, lines: int, follow: bool) -> int:
    from providers.sovits.servers import tail

    if not path.is_file():
        print(f"no server log yet at {path} (the agent writes it when it starts the server)", file=sys.stderr)
        return 1
    for line in tail(path, lines):
        print(line)
    if not follow:
        return 0
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        try:
            while True:
                raw = handle.readline()
                if raw:
                    sys.stdout.write(raw.decode("utf-8", "replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.3)
        except KeyboardInterrupt:
            return 0


def _install(host: CliHost, args: argparse.Namespace) -> int:
    from providers.sovits.config import SovitsSettings
    from providers.sovits.install import REPO_URL, install

    target = args.dir
    if target is None:
        settings = host.provider_settings(args.profile, "sovits")
        assert isinstance(settings, SovitsSettings)
        configured = Path(settings.install_dir).expanduser()
        target = configured if configured.is_absolute() else host.context(args.profile).home / configured
    code = install(target.resolve(), args.device, args.source, args.repo or REPO_URL, args.dry_run)
    if code == 0 and not args.dry_run:
        print(json.dumps({"tts": {"sovits": {"installDir": str(target.resolve()), "autoStart": True}}}, indent=2))
        print("(put the lines above in etc/voice.json to let the agent run it)")
    return code
