"""Pause other GPU users (Ollama by default) while a job needs their VRAM, and always resume them.

Paused process ids are written to a state file before SIGSTOP, so an agent killed mid-job
resumes them on its next start (``resume_leftovers``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

from providers.common.files import atomic_write_text

log = logging.getLogger(__name__)


class HogPauser:
    def __init__(self, names: list[str], state_file: Path) -> None:
        self.names = [n.lower() for n in names]
        self.state_file = state_file

    def find(self) -> list[int]:
        import psutil

        found = []
        for process in psutil.process_iter(["pid", "name", "cmdline"]):
            name = (process.info.get("name") or "").lower()
            command = " ".join(process.info.get("cmdline") or []).lower()
            if process.info["pid"] != os.getpid() and any(n == name or f"/{n} " in f"{command} " for n in self.names):
                found.append(int(process.info["pid"]))
        return found

    def pause(self) -> list[int]:
        pids = self.find()
        if not pids:
            return []
        atomic_write_text(self.state_file, json.dumps(sorted(set(pids) | set(self._recorded()))))
        return _signal_each(pids, signal.SIGSTOP, "pause")

    def resume(self, pids: list[int] | None = None) -> list[int]:
        resumed = _signal_each(sorted(set(pids or []) | set(self._recorded())), signal.SIGCONT, "resume")
        self.state_file.unlink(missing_ok=True)
        return resumed

    def resume_leftovers(self) -> list[int]:
        """After a crash: resume whatever the last run left stopped."""
        if not self.state_file.exists():
            return []
        resumed = self.resume()
        if resumed:
            log.warning("resumed GPU users left paused by a previous run: %s", resumed)
        return resumed

    def _recorded(self) -> list[int]:
        try:
            return [int(p) for p in json.loads(self.state_file.read_text())]
        except (OSError, ValueError, TypeError):
            return []


def _signal_each(pids: list[int], sig: signal.Signals, verb: str) -> list[int]:
    """The pids that got ``sig``; one that is gone is skipped, one we may not signal is logged."""
    done = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            done.append(pid)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            log.warning("cannot %s process %d: %s", verb, pid, exc)
    return done
