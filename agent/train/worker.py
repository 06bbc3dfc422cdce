"""A training job's own process: ``python -m agent.train.worker`` with the job spec on stdin.

Progress goes to the runner as JSON lines on the original stdout; everything else the trainer
prints goes to stderr, which the runner keeps as the job's log. SIGTERM asks the trainer to
checkpoint and stop; SIGKILL is a crash the runner recovers from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from agent.train.base import Progress, TrainSpec
from agent.train.registry import load_trainer


def _protocol_stream() -> TextIO:
    """Keep the real stdout for the protocol; send stray prints to the log (stderr)."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return protocol


def main() -> int:
    document: dict[str, Any] = json.loads(sys.stdin.read())
    out = _protocol_stream()
    if document.get("nice"):
        os.nice(int(document["nice"]))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    trainer = load_trainer(document["trainer"])
    spec = TrainSpec(
        profile=document["profile"], speaker=document["speaker"], dataset_dir=Path(document["dataset_dir"]),
        output_dir=Path(document["output_dir"]), checkpoint_dir=Path(document["checkpoint_dir"]),
        params=trainer.params_model.model_validate(document["params"]).model_dump(),
        device=document.get("device", "cpu"), seed=int(document.get("seed", 0)),
    )
    spec.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    spec.output_dir.mkdir(parents=True, exist_ok=True)

    def report(progress: Progress) -> None:
        out.write(json.dumps({"type": "progress", **asdict(progress)}) + "\n")

    result = trainer.run(spec, report, stop.is_set)
    out.write(json.dumps({"type": "result", "status": result.status, "outputs": [str(p) for p in result.outputs],
                          "metrics": result.metrics}) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
