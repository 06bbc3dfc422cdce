#!/usr/bin/env python3
"""Moving a node's file by hash (issue 22): a 55 MB file (an RVC model's size) in a real agent's
home, fetched by ``BlobCache`` over its HTTP door (``GET /api/blobs/<sha256>``, the token, SHA-256
checked before the rename) on loopback: the first fetch (the agent hashes the kept files on the
first ask), a second fetch once the agent knows the hash, and a cache hit. Beside it, ``curl`` for
the same route, as the floor of the transfer itself.

Run by hand: ``.venv/bin/python bench/blob_move.py --repeat 5``."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.blobs.cache import BlobCache  # noqa: E402
from tests.conftest import AgentProcess, make_home  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402

TOKEN = "bench-token-" + "b" * 24
SIZE = 55 * 1000 * 1000


def timed(work: object) -> float:
    began = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        broker = Mosquitto(work / "mq").start()
        port = free_port()
        home = make_home(work / "home")
        model = os.urandom(SIZE)
        sha = hashlib.sha256(model).hexdigest()
        folder = home / "profiles" / "default" / "out" / "voices" / "rvc" / "anna"
        folder.mkdir(parents=True)
        (folder / "anna.pth").write_bytes(model)
        agent = AgentProcess(home, broker.port, {"VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port),
                                                 "VOICE_AGENT_HTTP_TOKEN": TOKEN}).start()
        url = f"http://127.0.0.1:{port}"
        try:
            agent.wait_log("ready")
            first = timed(lambda: BlobCache(work / "c0", 1 << 30).get(sha, url, TOKEN))
            fetches, hits, curls = [], [], []
            for round_ in range(args.repeat):
                cache = BlobCache(work / f"c{round_ + 1}", 1 << 30)
                fetches.append(timed(lambda: cache.get(sha, url, TOKEN)))
                hits.append(timed(lambda: cache.get(sha, url, TOKEN)))
                shutil.rmtree(cache.folder)
                curls.append(timed(lambda: subprocess.run(
                    ["curl", "-sf", "-H", f"Authorization: Bearer {TOKEN}", "-o", str(work / "curl.bin"),
                     f"{url}/api/blobs/{sha}"], check=True)))
        finally:
            agent.stop()
            broker.stop()
    mb = SIZE / 1e6
    print(f"file {mb:.0f} MB, {args.repeat} rounds")
    print(f"first fetch (the agent hashes its kept files first): {first * 1000:.0f} ms")
    print(f"fetch, hash known: median {statistics.median(fetches) * 1000:.0f} ms "
          f"({mb / statistics.median(fetches):.0f} MB/s), min {min(fetches) * 1000:.0f} ms")
    print(f"curl, same route:  median {statistics.median(curls) * 1000:.0f} ms "
          f"({mb / statistics.median(curls):.0f} MB/s)")
    print(f"cache hit: median {statistics.median(hits) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
