"""Processes that reach librosa at once on an empty numba cache (a fresh install, parallel tests)
leave a cache that every later process loads: without the lock, three started a second apart
wrote one that crashed the next process in ``librosa.yin`` (numba#10128), as it did in CI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PITCH = 150.0
SCRIPT = f"""
import numpy as np
from providers.kokoro.similarity import median_pitch
t = np.arange(16000) / 16000
print(median_pitch(np.sin(2 * np.pi * {PITCH} * t).astype(np.float32), 16000))
"""


def median_pitch_processes(count: int, env: dict[str, str]) -> list[tuple[int, str, str]]:
    """``count`` processes, each started a second after the one before: a late one finds part of
    the cache written and compiles the rest (the race; all started at once, they mostly tie)."""
    started = []
    for _ in range(count):
        command = [sys.executable, "-c", SCRIPT]
        started.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(1.0)
    ended = [(process, *process.communicate(timeout=240)) for process in started]
    return [(process.returncode, out, err) for process, out, err in ended]


@pytest.mark.slow
def test_processes_filling_an_empty_numba_cache_at_once_leave_one_the_next_can_load(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "TMPDIR": str(tmp_path)}
    at_once = median_pitch_processes(3, env)
    after = median_pitch_processes(1, env)
    for returncode, out, err in at_once + after:
        assert returncode == 0, err[-3000:]
        assert float(out) == pytest.approx(PITCH, abs=3)
    assert list((tmp_path / "numba").rglob("guf-*.nbi")), "the gufuncs were not cached: the test proved nothing"
    assert (tmp_path / f"voice-agent-numba-{os.getuid()}.lock").exists()
