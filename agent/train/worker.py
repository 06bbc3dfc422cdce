"""A training job's own process: ``python -m agent.train.worker`` with the job spec on stdin.

Progress goes to the runner as JSON lines on the original stdout; everything else the trainer
prints or logs goes to stderr, which the runner keeps as the job's log (with a line per progress
report). SIGTERM asks the trainer to checkpoint and stop; SIGKILL is a crash the runner recovers
from the last checkpoint; a refusal (``TrainingRefused``) is a result, so it is not retried.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from agent import memory as memory_state
from agent.train.registry import load_trainer
from providers.base import ProviderContext
from providers.common.process import follow_parent
from providers.training import Progress, TrainingRefused, TrainSpec

log = logging.getLogger("agent.train.job")


def context_document(ctx: ProviderContext) -> dict[str, Any]:
    """The job's context for the job process (JSON on its stdin)."""
    return {"profile": ctx.profile, "profile_dir": str(ctx.profile_dir), "voices_dirs": [str(d) for d in ctx.voices_dirs],
            "data_dir": str(ctx.data_dir), "run_dir": str(ctx.run_dir), "home": str(ctx.home),
            "samples_dir": str(ctx.samples_dir)}


def context_from(document: dict[str, Any]) -> ProviderContext:
    return ProviderContext(
        profile=document["profile"], profile_dir=Path(document["profile_dir"]),
        voices_dirs=tuple(Path(d) for d in document["voices_dirs"]), data_dir=Path(document["data_dir"]),
        run_dir=Path(document["run_dir"]), home=Path(document["home"]), samples_dir=Path(document["samples_dir"]),
    )


def _protocol_stream() -> TextIO:
    """Keep the real stdout for the protocol; send stray prints to the log (stderr)."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return protocol


def _orphaned(stop: threading.Event, grace: float = 60.0) -> None:
    stop.set()
    threading.Timer(grace, lambda: os._exit(3)).start()  # a trainer that does not stop in time is ended


def main() -> int:
    document: dict[str, Any] = json.loads(sys.stdin.read())
    out = _protocol_stream()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if document.get("nice"):
        os.nice(int(document["nice"]))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    follow_parent(lambda: _orphaned(stop))  # the agent died: checkpoint and stop; the next agent resumes
    trainer = load_trainer(document["trainer"])
    spec = TrainSpec(
        profile=document["profile"], speaker=document["speaker"], dataset_dir=Path(document["dataset_dir"]),
        output_dir=Path(document["output_dir"]), checkpoint_dir=Path(document["checkpoint_dir"]),
        params=trainer.params_model.model_validate(document["params"]).model_dump(),
        ctx=context_from(document["ctx"]), device=document.get("device", "cpu"), seed=int(document.get("seed", 0)),
        memory_mb=memory_state.report().available_mb,
    )
    spec.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    spec.output_dir.mkdir(parents=True, exist_ok=True)

    def report(progress: Progress) -> None:
        out.write(json.dumps({"type": "progress", **asdict(progress)}) + "\n")
        log.info("%s %d/%d %s", progress.stage, progress.step, progress.total, progress.message)

    try:
        result = trainer.run(spec, report, stop.is_set)
    except TrainingRefused as exc:
        log.error("refused: %s", exc)
        out.write(json.dumps({"type": "result", "status": "refused", "error": str(exc)}) + "\n")
        out.flush()
        return 0
    out.write(json.dumps({"type": "result", "status": result.status, "outputs": [str(p) for p in result.outputs],
                          "metrics": result.metrics}) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
