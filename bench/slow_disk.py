#!/usr/bin/env python3
"""What a slow disk costs a speak request: the agent with its audio cache on, every text new (a
miss: the audio is made, then kept), over MQTT, its ``fsync`` made ``--fsync-ms`` slower by a
small ``LD_PRELOAD`` shim built here with gcc (a home server's SD card syncs in milliseconds to
tens of them; this disk in well under one). Whole answers (``"stream": false``: the audio leaves
with the answer) and streamed ones (the response ends the request), from the publish to the first
audio and to the response.

    .venv/bin/python bench/slow_disk.py --fsync-ms 20 --rounds 15
    git worktree add /tmp/before <commit> && .venv/bin/python bench/slow_disk.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.doors_bench import CACHED_PROFILE, agent_env, make_home, process, wait_listening  # noqa: E402
from bench.speak_bench import BenchClient, source_version  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
static int extra_us(void) { const char *v = getenv("SLOW_FSYNC_US"); return v ? atoi(v) : 0; }
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    usleep(extra_us());
    return real(fd);
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    usleep(extra_us());
    return real(fd);
}
"""
ROOMS = ("kitchen", "hallway", "garage", "bedroom", "office", "porch", "attic", "cellar")


def build_shim(folder: Path) -> Path:
    source, library = folder / "slow_fsync.c", folder / "slow_fsync.so"
    source.write_text(SHIM)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def texts(count: int) -> list[str]:
    """Short sentences, each new to the cache."""
    return [f"The {ROOMS[i % len(ROOMS)]} lights are on, number {i}." for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsync-ms", type=float, default=20.0, help="added to every fsync of the agents' processes")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--before", type=Path, help="a worktree of another commit: its agent runs beside this one, "
                        "requests alternating")
    args = parser.parse_args()
    repos = {"this": REPO, **({"before": args.before} if args.before else {})}
    results: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="slow-disk-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        shim = build_shim(root)
        clients = {}
        for name, repo in repos.items():
            broker = Mosquitto(root / name / "mosquitto").start()
            stack.callback(broker.stop)
            wyoming, http = free_port(), free_port()
            env = {**agent_env(make_home(root / name), broker.port, wyoming, http),
                   "LD_PRELOAD": str(shim), "SLOW_FSYNC_US": str(int(args.fsync_ms * 1000))}
            agent = stack.enter_context(process([sys.executable, "-m", "agent", "run"], root / name / "agent.log", env,
                                                cwd=repo))
            asyncio.run(wait_listening(wyoming, agent, f"agent ({name})"))
            clients[name] = BenchClient(broker.port)
            stack.callback(clients[name].close)
        said = iter(texts(2 * (args.rounds + 2)))
        for round_no in range(args.rounds + 2):
            order = list(clients) if round_no % 2 else list(clients)[::-1]
            for stream in ((False, True) if round_no % 2 else (True, False)):
                text = next(said)  # the same to each agent: new to each one's cache
                for name in order:
                    time.sleep(0.3)
                    timing = clients[name].speak(CACHED_PROFILE, text, stream)
                    if timing.cached:
                        raise SystemExit("a cache hit: the texts must be new")
                    if round_no >= 2:
                        results.setdefault((name, stream), []).append((timing.first_audio_ms, timing.response_ms))
    print(f"- {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; fsync + {args.fsync_ms:g} ms; {args.rounds} rounds "
          f"after 2, requests alternating; load {os.getloadavg()[0]:.2f}; "
          + ", ".join(f"{name}: {source_version(repo)}" for name, repo in repos.items()))
    print("| agent | answer | first audio ms, median (min) | response ms, median (min) |\n|---|---|---|---|")
    for (name, stream), rows in sorted(results.items()):
        first, response = [r[0] for r in rows], [r[1] for r in rows]
        print(f"| {name} | {'streamed' if stream else 'whole'} | {statistics.median(first):.1f} ({min(first):.1f}) | "
              f"{statistics.median(response):.1f} ({min(response):.1f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
