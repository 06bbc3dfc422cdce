"""Kept samples of one profile: WAV files plus SQLite metadata that never disagree.

A sample is written as a temp file, its row inserted, the file renamed into place, then the
transaction committed. A crash at any point leaves either nothing or an orphan that
``reconcile`` (run on every open) removes, so no row ever points at a missing file and no
file lacks its row.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from providers.common.audio import to_pcm16, wav_bytes
from providers.common.files import atomic_write_bytes

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    file TEXT NOT NULL,
    duration REAL NOT NULL,
    sample_rate INTEGER NOT NULL,
    transcript TEXT,
    score REAL NOT NULL,
    components TEXT NOT NULL,
    measurements TEXT NOT NULL,
    source TEXT,
    speaker_similarity REAL,
    transcript_mismatch TEXT        -- why the transcript is not what was said, or NULL
);
CREATE TABLE IF NOT EXISTS speaker (
    kind TEXT PRIMARY KEY,          -- 'enrolled' or 'centroid'
    embedding BLOB NOT NULL,
    count INTEGER NOT NULL,
    updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Sample:
    id: str
    created: float
    file: str
    duration: float
    sample_rate: int
    transcript: str | None
    score: float
    components: dict[str, float]
    measurements: dict[str, Any]
    source: str | None
    speaker_similarity: float | None
    transcript_mismatch: str | None = None  # the words heard differ from the transcript: why

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class CorruptDatabase(Exception):
    """The samples database was damaged (not a database, malformed pages) and is set aside: it
    cannot be trusted, but the WAVs beside it can (a new database scores them again)."""

    def __init__(self, reason: str, kept_as: Path) -> None:
        super().__init__(f"{reason} (kept as {kept_as.name})")
        self.reason = reason
        self.kept_as = kept_as


CORRUPT_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def set_aside(db_path: Path, when: float) -> Path:
    """Rename a damaged database and its WAL files to ``<name>.corrupt-<time>``: kept for whoever
    wants to look into it, out of the way of a new one. The new name of the database."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    target = db_path.with_name(f"{db_path.name}.corrupt-{stamp}")
    for suffix in ("-wal", "-shm"):
        part = db_path.with_name(db_path.name + suffix)
        if part.exists():
            os.replace(part, target.with_name(target.name + suffix))
    os.replace(db_path, target)
    return target


def open_store(samples_dir: Path, db_path: Path) -> tuple[SampleStore, CorruptDatabase | None]:
    """Open the store; when its database was damaged (and set aside) a new one is made in its
    place, and its samples' WAVs, now without rows, wait in ``orphans/`` to be scored again.
    OSError, sqlite3.Error or CorruptDatabase when even that fails."""
    try:
        return SampleStore(samples_dir, db_path), None
    except CorruptDatabase as exc:
        log.error("%s is damaged (%s): kept as %s; a new one is made and its samples are scored again",
                  db_path, exc.reason, exc.kept_as.name)
        return SampleStore(samples_dir, db_path), exc


class SampleStore:
    """A profile's samples folder and its database (``Layout.samples_dir``, ``samples_db``)."""

    def __init__(self, samples_dir: Path, db_path: Path) -> None:
        """Open (or create) the store. A damaged database is set aside (``CorruptDatabase``)."""
        self.samples_dir = samples_dir
        self.db_path = db_path
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        try:
            damage = self._damage()
        except BaseException:
            self._db.close()
            raise
        if damage is not None:
            kept = set_aside(self.db_path, time.time())  # before it is closed: closing, SQLite deletes the WAL
            self._db.close()
            raise CorruptDatabase(damage, kept)
        self.reconcile()

    def _damage(self) -> str | None:
        """Prepare the database; why it cannot be trusted, or None (the whole file is checked)."""
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
            self._upgrade()
            found = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") in CORRUPT_CODES:
                return str(exc)
            raise
        return None if found == ["ok"] else "; ".join(found)

    def _upgrade(self) -> None:
        """Columns added since a database was made (read by position: appended at the end)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(samples)")}
        if "transcript_mismatch" not in columns:
            self._db.execute("ALTER TABLE samples ADD COLUMN transcript_mismatch TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @property
    def orphans_dir(self) -> Path:
        """Audio found without its row (a lost or old database, a crash mid-write): kept, to be scored again."""
        return self.samples_dir / "orphans"

    def reconcile(self) -> list[Path]:
        """Rows without files go; files without rows are never deleted but moved to ``orphans/``
        (the record service scores them again). The orphans found, oldest first."""
        with self._transaction() as db:
            rows = {r[0]: r[1] for r in db.execute("SELECT id, file FROM samples")}
            files = {p.name for p in self.samples_dir.iterdir() if p.is_file()}
            known = set(rows.values())
            for name in sorted(files - known):
                if name.endswith(".tmp"):  # an atomic write that never finished: not a whole file
                    (self.samples_dir / name).unlink(missing_ok=True)
                    continue
                target = self.orphans_dir / name.lstrip(".").removesuffix(".staged")
                log.warning("keeping %s in %s: it has no metadata (a lost database, or a crash mid-write)", name, self.orphans_dir)
                self.orphans_dir.mkdir(exist_ok=True)
                os.replace(self.samples_dir / name, target)
            for sample_id, name in rows.items():
                if name not in files:
                    log.warning("removing sample %s: its file %s is gone", sample_id, name)
                    db.execute("DELETE FROM samples WHERE id = ?", (sample_id,))
        return sorted(self.orphans(), key=lambda p: p.stat().st_mtime_ns)

    def orphans(self) -> list[Path]:
        return [p for p in self.orphans_dir.glob("*.wav")] if self.orphans_dir.is_dir() else []

    def add(
        self,
        samples: np.ndarray,
        sample_rate: int,
        score: float,
        components: dict[str, float],
        measurements: dict[str, Any],
        transcript: str | None,
        source: str | None,
        speaker_similarity: float | None,
        transcript_mismatch: str | None = None,
    ) -> Sample:
        sample_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        sample = Sample(
            id=sample_id,
            created=time.time(),
            file=f"{sample_id}.wav",
            duration=round(len(samples) / sample_rate, 3),
            sample_rate=sample_rate,
            transcript=transcript,
            score=score,
            components=components,
            measurements=measurements,
            source=source,
            speaker_similarity=speaker_similarity,
            transcript_mismatch=transcript_mismatch,
        )
        data = wav_bytes(to_pcm16(samples), sample_rate)
        staged = self.samples_dir / f".{sample.file}.staged"
        atomic_write_bytes(staged, data)
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        sample.id, sample.created, sample.file, sample.duration, sample.sample_rate,
                        transcript, score, json.dumps(components), json.dumps(measurements), source,
                        speaker_similarity, transcript_mismatch,
                    ),
                )
                os.replace(staged, self.samples_dir / sample.file)
        finally:
            staged.unlink(missing_ok=True)
        return sample

    def get(self, sample_id: str) -> Sample | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM samples WHERE id = ?", (sample_id,)).fetchone()
        return _sample(row) if row else None

    def list(self, order: str = "created", limit: int | None = None, min_score: float | None = None) -> list[Sample]:
        column = {"created": "created DESC", "score": "score DESC", "duration": "duration DESC"}[order]
        query = "SELECT * FROM samples"
        args: list[Any] = []
        if min_score is not None:
            query += " WHERE score >= ?"
            args.append(min_score)
        query += f" ORDER BY {column}"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [_sample(r) for r in rows]

    def delete(self, sample_ids: "builtins.list[str]") -> "builtins.list[str]":
        """Delete these samples (row first, then file: a crash leaves an orphan file, never a dangling row)."""
        deleted = []
        for sample_id in sample_ids:
            with self._transaction() as db:
                row = db.execute("SELECT file FROM samples WHERE id = ?", (sample_id,)).fetchone()
                if row is None:
                    continue
                db.execute("DELETE FROM samples WHERE id = ?", (sample_id,))
            (self.samples_dir / row[0]).unlink(missing_ok=True)
            deleted.append(sample_id)
        return deleted

    def transcripts(self) -> "builtins.list[str]":
        """The transcripts of the kept samples that hold what was said (the prompts read)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT transcript FROM samples WHERE transcript IS NOT NULL AND transcript_mismatch IS NULL").fetchall()
        return [r[0] for r in rows]

    def path(self, sample: Sample) -> Path:
        return self.samples_dir / sample.file

    # -- the profile's voice --------------------------------------------------------------
    def speaker(self) -> tuple[str, np.ndarray, int] | None:
        """('enrolled'|'centroid', embedding, count); an enrolled reference wins."""
        with self._lock:
            rows = dict(
                (r[0], (r[1], r[2]))
                for r in self._db.execute("SELECT kind, embedding, count FROM speaker").fetchall()
            )
        for kind in ("enrolled", "centroid"):
            if kind in rows:
                blob, count = rows[kind]
                return kind, np.frombuffer(blob, dtype=np.float32).copy(), int(count)
        return None

    def centroid(self) -> np.ndarray | None:
        with self._lock:
            row = self._db.execute("SELECT embedding FROM speaker WHERE kind = 'centroid'").fetchone()
        return np.frombuffer(row[0], dtype=np.float32).copy() if row else None

    def add_to_centroid(self, embedding: np.ndarray) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT embedding, count FROM speaker WHERE kind = 'centroid'").fetchone()
            if row is None:
                mean, count = embedding.astype(np.float32), 1
            else:
                old, count = np.frombuffer(row[0], dtype=np.float32), int(row[1])
                mean, count = ((old * count + embedding) / (count + 1)).astype(np.float32), count + 1
            db.execute(
                "INSERT OR REPLACE INTO speaker VALUES ('centroid', ?, ?, ?)", (mean.tobytes(), count, time.time())
            )

    def set_enrolled(self, embedding: np.ndarray | None) -> None:
        with self._transaction() as db:
            if embedding is None:
                db.execute("DELETE FROM speaker WHERE kind = 'enrolled'")
            else:
                db.execute(
                    "INSERT OR REPLACE INTO speaker VALUES ('enrolled', ?, 1, ?)",
                    (embedding.astype(np.float32).tobytes(), time.time()),
                )


def _sample(row: tuple[Any, ...]) -> Sample:
    return Sample(
        id=row[0], created=row[1], file=row[2], duration=row[3], sample_rate=row[4], transcript=row[5],
        score=row[6], components=json.loads(row[7]), measurements=json.loads(row[8]), source=row[9],
        speaker_similarity=row[10], transcript_mismatch=row[11],
    )
