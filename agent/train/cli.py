"""``voice-agent train ...`` and ``voice-agent gpu ...``: jobs go through the running agent
(MQTT), so a job started by a home-automation rule can be followed here too."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import uuid
from typing import Any

from agent.mqtt.client import request_or_report
from agent.settings import AgentSettings

FINAL = ("training.finished", "training.failed", "training.cancelled")


def add_parsers(sub: Any) -> None:
    train = sub.add_parser("train", help="start, follow, inspect and cancel training jobs")
    train.add_argument("-p", "--profile", default="default")
    actions = train.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="queue a job (and follow it)")
    start.add_argument("provider", help="kokoro or rvc")
    start.add_argument("--speaker", default="default")
    start.add_argument("--when", choices=["now", "idle"], default="idle")
    start.add_argument("--params", default="{}", help='JSON, e.g. \'{"epochs": 300}\'')
    start.add_argument("--no-follow", action="store_true")
    follow = actions.add_parser("follow", help="show a job's progress until it ends")
    follow.add_argument("job")
    status = actions.add_parser("status", help="recent jobs, or one job")
    status.add_argument("job", nargs="?")
    cancel = actions.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job")

    gpu = sub.add_parser("gpu", help="GPU status and Ollama's share of it")
    gpu_actions = gpu.add_subparsers(dest="action", required=True)
    gpu_actions.add_parser("status", help="GPUs, VRAM and the processes using it")
    ollama = gpu_actions.add_parser("configure-ollama", help="systemd drop-in that caps Ollama's VRAM")
    ollama.add_argument("--fraction", type=float, help="share of VRAM Ollama may use (default: by VRAM size)")
    ollama.add_argument("--write", action="store_true", help="write the drop-in (default: only show it)")


def run_train(settings: AgentSettings, args: argparse.Namespace) -> int:
    if args.action == "follow":
        return follow(settings, args.profile, args.job)
    if args.action == "start":
        try:
            params = json.loads(args.params)
        except ValueError as exc:
            print(f"error: --params is not JSON: {exc}", file=sys.stderr)
            return 2
        payload = {"provider": args.provider, "speaker": args.speaker, "when": args.when, "params": params}
        reply = request_or_report(settings, args.profile, "train", payload, 60)
        if reply is None:
            return 1
        job = reply.response["data"]["job"]
        print(f"queued job {job['id']} ({job['provider']}/{job['speaker']}, when {job['run_when']})")
        return 0 if args.no_follow else follow(settings, args.profile, job["id"])
    command = "train.cancel" if args.action == "cancel" else "train.status"
    reply = request_or_report(settings, args.profile, command, {"job": args.job} if args.job else {}, 30)
    if reply is None:
        return 1
    print(json.dumps(reply.response["data"], indent=2))
    return 0


def follow(settings: AgentSettings, profile: str, job: str) -> int:
    """A progress bar fed by the job's events until it finishes, fails or is cancelled."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from tqdm import tqdm

    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"voice-agent-follow-{uuid.uuid4().hex[:6]}")
    if settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, password)

    def on_message(c: Any, u: Any, message: Any) -> None:
        document = json.loads(message.payload)
        if document.get("data", {}).get("job") == job:
            events.put((document["type"], document["data"]))

    client.on_message = on_message
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.subscribe(f"{settings.base_topic}/{profile}/event/+", qos=1)
    client.loop_start()
    bar = tqdm(total=0, unit="step", desc=job, dynamic_ncols=True)
    try:
        while True:
            name, data = events.get()
            if name == "training.progress":
                bar.total = data.get("total") or bar.total
                bar.n = data.get("step") or 0
                best = data.get("best")
                bar.set_postfix_str(f"{data.get('stage')}" + (f" best {best:.3f}" if isinstance(best, float) else ""))
                bar.refresh()
            elif name in FINAL:
                bar.close()
                print(f"{name.split('.')[1]}: {json.dumps({k: v for k, v in data.items() if k not in ('job',)})}")
                return 0 if name == "training.finished" else 1
            else:
                bar.write(f"{name}: {data.get('reason') or data.get('device') or ''}")
    except KeyboardInterrupt:
        return 130
    finally:
        client.loop_stop()
        client.disconnect()


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
    from agent.atomic import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as exc:
        print(f"error: cannot write {path}: {exc.strerror} (run as root)", file=sys.stderr)
        return 1
    print(f"wrote {path}; now run: systemctl daemon-reload && systemctl restart ollama")
    return 0
