"""A job's lines in its speaker's log, which every attempt of every job of that speaker shares."""

from __future__ import annotations

from pathlib import Path

from agent.train.logs import attempt_header, job_log


def test_only_the_jobs_own_attempts_and_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "counting-training-owner.log"
    log.write_text(
        attempt_header("2026-01-01 10:00:00", "20260101100000-aaaaaa", 1, "cpu") + "a step 1\na step 2\n"
        + attempt_header("2026-01-01 11:00:00", "20260101110000-bbbbbb", 1, "cpu") + "b step 1\n"
        + attempt_header("2026-01-01 12:00:00", "20260101100000-aaaaaa", 2, "cpu") + "a step 3\n"
    )
    lines = job_log(log, "20260101100000-aaaaaa", 100)
    assert [line for line in lines if not line.startswith("---")] == ["a step 1", "a step 2", "a step 3"]
    assert len(lines) == 5 and "attempt 2" in lines[3]
    assert job_log(log, "20260101100000-aaaaaa", 2) == lines[-2:]
    assert job_log(log, "20260101110000-bbbbbb", 100)[1:] == ["b step 1"]
    assert job_log(tmp_path / "missing.log", "20260101110000-bbbbbb", 10) == []
