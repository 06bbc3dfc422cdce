"""A job's lines in its speaker's log. The runner appends every attempt of every job of one
provider and speaker to one file (``Layout.status_files``), each attempt under a header line
``--- <time> job <id> attempt <n> on <device>``; a job's log is its attempts' sections."""

from __future__ import annotations

from pathlib import Path

HEADER = "--- "
READ_LIMIT = 4 * 1024 * 1024  # bytes read from the end of the file: a chatty job cannot fill the agent's memory


def attempt_header(when: str, job: str, attempt: int, device: str) -> str:
    return f"{HEADER}{when} job {job} attempt {attempt} on {device}\n"


def job_log(path: Path, job: str, lines: int) -> list[str]:
    """The last ``lines`` lines of ``job``'s sections of ``path`` (headers included)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - READ_LIMIT))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    found: list[str] = []
    mine = False
    marker = f" job {job} "
    for line in text.splitlines():
        if line.startswith(HEADER):
            mine = marker in line
        if mine:
            found.append(line)
    return found[-lines:]
