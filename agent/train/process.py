"""The training job process (agent/train/worker.py) from its starter's side: started with its job
document on stdin, its protocol read from its stdout. One start and one reader for this home's
runner (agent/train/runner.py) and for a worker node running another node's job
(agent/nodes/train_worker.py), so both hear the same protocol the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any


def start_job_process(document: dict[str, Any], log_file: IO[str]) -> subprocess.Popen[str]:
    """``python -m agent.train.worker`` with ``document`` on its stdin, its stderr into ``log_file``:
    this home's jobs, and the jobs a worker node runs for others."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.train.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=log_file, text=True, env=env,
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(document))
    process.stdin.close()
    return process


def job_reports(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The job process's reports as they come: each a JSON object whose ``type`` is ``progress`` or
    ``result``. Any other line (not JSON, not an object, another type) is passed over, so a stray
    line on its stdout never ends the reading: the process's exit code says how it ended."""
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("type") in ("progress", "result"):
            yield message
