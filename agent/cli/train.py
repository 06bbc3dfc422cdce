"""``voice-agent train ...`` and ``voice-agent gpu ...``: jobs go through the running agent (MQTT),
so a job started by a home-automation rule can be followed here too; when no agent runs jobs in
this home, a job started here runs in the foreground through the same runner."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.errors import ServiceError
from agent.mqtt.client import EventFollower, request_or_report
from agent.settings import AgentSettings
from providers.spec import CliError, TrainOutcome

FINAL = ("training.finished", "training.failed", "training.cancelled")


def cli_hint(code: str, data: dict[str, Any]) -> str:
    """What to run about a refused job, in the CLI's words (the page has its own: agent/http/hints.py)."""
    if code == "not_ready" and "missing" in data and data.get("provider") and data.get("speaker"):
        return (f" (or a dataset in {data.get('dataset')}: `voice-agent samples export {data['provider']} "
                f"--speaker {data['speaker']}` writes one)")
    return ""


def add_parsers(sub: Any) -> None:
    train = sub.add_parser("train", help="start, follow, inspect and cancel training jobs")
    train.add_argument("-p", "--profile", default="default",
                       help="profile: a folder under $VOICE_AGENT_HOME/profiles (default: default)")
    actions = train.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="queue a job (and follow it)")
    start.add_argument("provider", help="whose trainer: kokoro or rvc")
    start.add_argument("--speaker", default="default",
                       help="the dataset to train on and the voice's name, letters, digits, _ and - (default: default)")
    start.add_argument("--when", choices=["now", "idle"], default="idle",
                       help="now, or in the idle window (VOICE_AGENT_IDLE_WINDOW, 01:00-06:00 unless set) "
                            "(default: idle)")
    start.add_argument("--params", default="{}",
                       help='the trainer\'s parameters as JSON, e.g. \'{"epochs": 300}\' '
                            "(default: {}, the trainer's own)")
    start.add_argument("--no-follow", action="store_true",
                       help="return once the job is queued (default: follow it to its end)")
    follow = actions.add_parser("follow",
                                help="show a job's progress until it ends (Ctrl-C stops following, not the job)")
    follow.add_argument("job", help="the job id, as train start or train status shows it")
    status = actions.add_parser("status", help="recent jobs, or one job")
    status.add_argument("job", nargs="?", help="the job id (default: the recent jobs)")
    cancel = actions.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job", help="the job id")

    gpu = sub.add_parser("gpu", help="GPU status and Ollama's share of it")
    gpu_actions = gpu.add_subparsers(dest="action", required=True)
    gpu_actions.add_parser("status", help="GPUs, VRAM and the processes using it")
    ollama = gpu_actions.add_parser("configure-ollama", help="systemd drop-in that caps Ollama's VRAM")
    ollama.add_argument("--fraction", type=float, help="share of VRAM Ollama may use, 0.1-1.0 (default: by VRAM size)")
    ollama.add_argument("--write", action="store_true", help="write the drop-in (default: only show it)")


def run_train(settings: AgentSettings, args: argparse.Namespace) -> int:
    if args.action == "follow":
        with EventFollower(settings, args.profile) as events:
            return 0 if follow(events, args.job)[0] == "training.finished" else 1
    if args.action == "start":
        try:
            params = json.loads(args.params)
        except ValueError as exc:
            print(f"error: --params is not JSON: {exc}", file=sys.stderr)
            return 2
        payload = {"provider": args.provider, "speaker": args.speaker, "when": args.when, "params": params}
        with EventFollower(settings, args.profile) as events:
            reply = request_or_report(settings, args.profile, "train", payload, 60, cli_hint)
            if reply is None:
                return 1
            job = reply.response["data"]["job"]
            print(f"queued job {job['id']} ({job['provider']}/{job['speaker']}, when {job['run_when']})")
            if args.no_follow:
                return 0
            return 0 if follow(events, job["id"])[0] == "training.finished" else 1
    command = "train.cancel" if args.action == "cancel" else "train.status"
    reply = request_or_report(settings, args.profile, command, {"job": args.job} if args.job else {}, 30)
    if reply is None:
        return 1
    print(json.dumps(reply.response["data"], indent=2))
    return 0


class ProgressBar:
    """One job's events as a tqdm bar on stderr, and its end as a line on stdout."""

    def __init__(self, job: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit="step", desc=job, dynamic_ncols=True, file=sys.stderr)

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        if name == "training.progress":
            self._bar.total = data.get("total") or self._bar.total
            self._bar.n = data.get("step") or 0
            self._bar.set_description(str(data.get("stage") or "training"), refresh=False)
            best = data.get("best")
            self._bar.set_postfix_str(f"best {best:.3f}" if isinstance(best, float) else "", refresh=False)
            self._bar.refresh()
        elif name in FINAL:
            self._bar.close()
            print(f"{name.split('.')[1]}: {json.dumps({k: v for k, v in data.items() if k != 'job'})}")
        else:
            self._bar.write(f"{name}: {data.get('reason') or data.get('device') or ''}")


def follow(events: EventFollower, job: str) -> tuple[str, dict[str, Any]]:
    """Show the job's progress until it finishes, fails or is cancelled; its last event."""
    bar = ProgressBar(job)
    try:
        while True:
            name, data = events.next()
            if data.get("job") != job:
                continue
            bar(name, data)
            if name in FINAL:
                return name, data
    except KeyboardInterrupt:
        return "interrupted", {}


def train_and_follow(settings: AgentSettings, profile: str, provider: str, speaker: str, params: dict[str, Any],
                     dataset: Path | None) -> TrainOutcome:
    """For provider CLIs (``kokoro train-voicepack``): in the foreground when no agent runs jobs
    here, else through the agent; the outputs, or ``CliError`` with the reason."""
    from agent.train.foreground import RunnerBusy, train_in_foreground
    from agent.train.requests import TrainRequest

    request = TrainRequest(provider=provider, speaker=speaker, when="now", params=params)
    bar = ProgressBar(f"{provider}/{speaker}")
    last: dict[str, Any] = {}

    def on_event(name: str, data: dict[str, Any]) -> None:
        bar(name, data)
        last.update(data)

    try:
        job = train_in_foreground(settings, profile, request, dataset, on_event)
    except ServiceError as exc:
        raise CliError(f"{exc}{cli_hint(exc.code, exc.data or {})}") from exc
    except RunnerBusy:
        if dataset is not None:
            raise CliError("the running agent trains on exported datasets: drop --dataset, or stop the agent") from None
        with EventFollower(settings, profile) as events:
            reply = request_or_report(settings, profile, "train", request.model_dump(exclude_none=True), 60, cli_hint)
            if reply is None:
                raise CliError("the agent refused the job") from None
            name, data = follow(events, reply.response["data"]["job"]["id"])
        if name != "training.finished":
            raise CliError(str(data.get("error") or name)) from None
        return TrainOutcome([Path(p) for p in data.get("outputs", [])], dict(data.get("metrics", {})))
    if job.state == "queued":
        raise CliError("stopped at a checkpoint; run the same command again to resume")
    if job.state != "finished":
        raise CliError(job.error or f"the job was {job.state}")
    return TrainOutcome([Path(p) for p in job.outputs], dict(last.get("metrics") or {}))


def run_gpu(settings: AgentSettings, args: argparse.Namespace) -> int:
    from agent.gpu.ollama import drop_in, recommended_fraction
    from agent.gpu.status import NvmlInfo

    report = NvmlInfo().report()
    if args.action == "status":
        if not report.available:
            print(report.reason)
            return 0
        for gpu in report.gpus:
            print(f"GPU {gpu.index}: {gpu.name}  {gpu.used_mb}/{gpu.total_mb} MB used, {gpu.free_mb} MB free")
            for process in gpu.processes:
                print(f"  {process.pid:>7}  {process.name:24} {process.used_mb:>6} MB")
        return 0
    total_mb = max((g.total_mb for g in report.gpus), default=0)
    fraction = args.fraction if args.fraction is not None else recommended_fraction(total_mb)
    if not 0.1 <= fraction <= 1.0:
        print("error: --fraction must be between 0.1 and 1.0", file=sys.stderr)
        return 2
    path, text = drop_in(fraction, total_mb)
    if not args.write:
        print(f"# would write {path} (run with --write to do it):\n{text}")
        return 0
    from providers.common.files import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as exc:
        print(f"error: cannot write {path}: {exc.strerror} (run as root)", file=sys.stderr)
        return 1
    print(f"wrote {path}; now run: systemctl daemon-reload && systemctl restart ollama")
    return 0
