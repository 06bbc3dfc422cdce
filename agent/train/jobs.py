"""Training jobs that outlive the agent: rows in SQLite, plus the seed's per-job status file.

The status JSON (``Layout.status_files``: ``logs/run/<provider>-training-<speaker>.json``, where
the seed keeps it) is what a person or the seed's tools look at; it is rewritten atomically.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from agent.layout import StatusFiles
from providers.common.files import atomic_write_text

JobState = Literal["queued", "running", "paused", "finished", "failed", "cancelled"]
ACTIVE: tuple[JobState, ...] = ("queued", "running", "paused")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    provider TEXT NOT NULL,
    speaker TEXT NOT NULL,
    params TEXT NOT NULL,
    run_when TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    progress TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',
    dataset TEXT,
    timing TEXT
);
"""
COLUMNS_ADDED = {  # jobs.db files older than the column
    "dataset": "ALTER TABLE jobs ADD COLUMN dataset TEXT",
    "timing": "ALTER TABLE jobs ADD COLUMN timing TEXT",
}


@dataclass(frozen=True)
class Job:
    id: str
    profile: str
    provider: str
    speaker: str
    params: dict[str, Any]
    run_when: Literal["now", "idle"]
    state: JobState
    created: float
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    dataset: str | None = None  # trained on this folder as it is (the CLI's --dataset)
    timing: dict[str, Any] | None = None  # its measured pace (agent/train/estimate.py: Timing), once it ran steps

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobStore:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, statement in COLUMNS_ADDED.items():
            if column not in present:
                self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, profile: str, provider: str, speaker: str, params: dict[str, Any], run_when: str,
               dataset: str | None = None) -> Job:
        job = Job(
            id=time.strftime("%Y%m%d%H%M%S-") + uuid.uuid4().hex[:6], profile=profile, provider=provider,
            speaker=speaker, params=params, run_when=run_when, state="queued", created=time.time(),  # type: ignore[arg-type]
            dataset=dataset,
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, profile, provider, speaker, params, run_when, state, created, dataset) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (job.id, profile, provider, speaker, json.dumps(params), run_when, job.state, job.created, dataset),
            )
        return job

    def update(self, job: Job, **changes: Any) -> Job:
        new = replace(job, **changes)
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state=?, started=?, finished=?, attempts=?, progress=?, error=?, outputs=?, timing=? "
                "WHERE id=?",
                (new.state, new.started, new.finished, new.attempts, json.dumps(new.progress), new.error,
                 json.dumps(new.outputs), None if new.timing is None else json.dumps(new.timing), new.id),
            )
        return new

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self, states: tuple[str, ...] | None = None, profile: str | None = None, limit: int = 50) -> list[Job]:
        query, args = "SELECT * FROM jobs WHERE 1=1", []  # type: tuple[str, list[Any]]
        if states:
            query += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        if profile:
            query += " AND profile = ?"
            args.append(profile)
        query += " ORDER BY created DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [_job(r) for r in rows]

    def last_timing(self, provider: str) -> dict[str, Any] | None:
        """The pace measured on the newest job of this trainer that ran steps (any end)."""
        with self._lock:
            row = self._db.execute("SELECT timing FROM jobs WHERE provider = ? AND timing IS NOT NULL "
                                   "ORDER BY COALESCE(finished, started, created) DESC LIMIT 1", (provider,)).fetchone()
        return json.loads(row[0]) if row else None

    def count(self, states: tuple[str, ...]) -> int:
        """Jobs of the whole home in these states."""
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({','.join('?' * len(states))})",
                                   states).fetchone()
        return int(row[0])


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0], profile=row[1], provider=row[2], speaker=row[3], params=json.loads(row[4]), run_when=row[5],
        state=row[6], created=row[7], started=row[8], finished=row[9], attempts=row[10],
        progress=json.loads(row[11]), error=row[12], outputs=json.loads(row[13]), dataset=row[14],
        timing=json.loads(row[15]) if row[15] else None,
    )


def write_status(files: StatusFiles, document: dict[str, Any]) -> None:
    """The seed's status JSON, flat on purpose (state, stage, step, total, best, eta_seconds, ...)."""
    atomic_write_text(files.json_path, json.dumps({**document, "updated": time.time()}, indent=2, default=str) + "\n")


def job_status(job: Job, eta_seconds: float | None) -> dict[str, Any]:
    document = {k: v for k, v in job.as_dict().items() if k != "progress"}
    document.update(job.progress)
    document["job"] = document.pop("id")
    document["eta_seconds"] = None if eta_seconds is None else round(eta_seconds)
    return document
