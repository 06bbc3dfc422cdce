#!/usr/bin/env python3
"""Voice downloads: the agent's download code (agent/voices/download.py) against ``curl`` for the
same 60 MB file (the joe voice's .onnx) from the local mirror (tests/voice_mirror.py), rounds
interleaved so drift hits both; then, through the real agent, the time from "pick" to first
audio of a catalog voice that is not installed: a ``config.set`` naming it (on-demand download,
then a speak request) and a speak request naming it (waits for its download).

Run by hand: ``.venv/bin/python bench/voice_download.py --repeat 5``."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.voices.download import fetch  # noqa: E402
from providers.catalog import CatalogFile  # noqa: E402
from tests.conftest import AgentProcess, Probe, make_home  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.voice_mirror import MIRROR_VOICES, VoiceMirror  # noqa: E402


def download_rounds(mirror: VoiceMirror, repeat: int, work: Path) -> tuple[list[float], list[float], int]:
    """Against a mirror in its own process, as curl is: the client's Python shares no GIL with it."""
    name = MIRROR_VOICES[0]
    info = mirror.catalog[name]["files"]
    path = next(p for p in info if p.endswith(".onnx"))
    file = CatalogFile(path, info[path]["size_bytes"], info[path]["md5_digest"])
    server = subprocess.Popen([sys.executable, "-m", "tests.voice_mirror"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parent.parent)
    assert server.stdout is not None and server.stdin is not None
    try:
        return _rounds(server.stdout.readline().strip() + "piper/" + path, file, repeat, work)
    finally:
        server.stdin.close()
        server.wait(10)


def _rounds(url: str, file: CatalogFile, repeat: int, work: Path) -> tuple[list[float], list[float], int]:
    ours, curls = [], []
    for index in range(repeat):
        target = work / f"round{index}"
        began = time.perf_counter()
        fetch(url, file, target).unlink()  # with the MD5 check, as the agent does
        ours.append(time.perf_counter() - began)
        out = work / "curl.onnx"
        began = time.perf_counter()
        subprocess.run(["curl", "-sS", "-o", str(out), url], check=True)
        curls.append(time.perf_counter() - began)
        out.unlink()
    return ours, curls, file.size or 0


def pick_to_audio(mirror: VoiceMirror, work: Path) -> dict[str, float]:
    broker = Mosquitto(work / "mosquitto").start()
    home = make_home(work / "home")
    catalog = home / "out" / "voices" / "catalog" / "piper.json"
    catalog.parent.mkdir(parents=True)
    catalog.write_bytes(mirror.files["voices.json"])  # type: ignore[arg-type]
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_PIPER_VOICES_URL": mirror.piper_url,
                                             "VOICE_AGENT_VOICE_DOWNLOAD_WAIT": "120"}).start()
    probe = None
    try:
        agent.wait_log("ready", timeout=60)
        probe = Probe(broker.port)
        found: dict[str, float] = {}
        # a speak request naming a voice that is not installed: it waits for the download
        name = MIRROR_VOICES[1]
        began = time.perf_counter()
        answer = probe.request("default", "speak", {"text": "Hello.", "voice": name, "stream": True}, timeout=180)
        assert answer["status"] == "ok" and answer["data"]["voice"] == name, answer
        found["speak_request_s"] = time.perf_counter() - began - answer["data"]["latency_ms"] / 1000 \
            + answer["data"]["first_audio_ms"] / 1000
        # config.set picks it: the agent fetches it on reload; the next request speaks with it
        name = MIRROR_VOICES[2]
        mark = probe.mark()
        began = time.perf_counter()
        changed = probe.request("default", "config.set", {"changes": {"tts": {"piper": {"model": name}}}})
        assert changed["status"] == "ok", changed
        probe.event("default", "voices.download.finished", after=mark, timeout=180)
        answer = probe.request("default", "speak", {"text": "Hello.", "stream": True}, timeout=180)
        assert answer["status"] == "ok" and answer["data"]["voice"] == name, answer
        found["config_set_s"] = time.perf_counter() - began - answer["data"]["latency_ms"] / 1000 \
            + answer["data"]["first_audio_ms"] / 1000
        return found
    finally:
        if probe is not None:
            probe.close()
        agent.stop()
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="download rounds (default: 5)")
    args = parser.parse_args()
    with VoiceMirror(with_kokoro=False) as mirror, tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        ours, curls, size = download_rounds(mirror, args.repeat, work)
        picked = pick_to_audio(mirror, work)
    ours_m, curl_m = statistics.median(ours), statistics.median(curls)
    print(json.dumps({
        "file_mb": round(size / 1e6, 1), "rounds": args.repeat,
        "agent_median_s": round(ours_m, 3), "curl_median_s": round(curl_m, 3),
        "agent_over_curl": round(ours_m / curl_m, 3),
        "agent_mb_s": round(size / 1e6 / ours_m, 1), "curl_mb_s": round(size / 1e6 / curl_m, 1),
        **{k: round(v, 2) for k, v in picked.items()},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
