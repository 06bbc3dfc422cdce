#!/usr/bin/env python3
"""RVC benchmark on this machine, with full-size networks of random weights (speed does not
depend on the weights' values):

(a) in-process: load times, and warm conversion of Piper sentences by a v2 40k model (the
    standard 18-item config), with the real-size HuBERT base (12 x 768) and RMVPE (the E2E
    network of rmvpe.pt) - real-time factor (conversion time / audio time) per stage;
(b) the agent: ``tts.provider = "rvc"`` so it preloads at start; time from start to ``ready``,
    the first speak request after that, later requests, a cached one, and the process's peak RSS.

Run by hand: ``.venv/bin/python bench/rvc_bench.py [--repeat 3] [--markdown out.md]``.
Everything started here is stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.texts import TEXTS  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tests.providers.rvc import fakes  # noqa: E402

REAL_HUBERT = fakes.HubertSize(dim=768, layers=12, heads=12, ffn=3072, conv_dim=512, conv_pos=128, conv_pos_groups=16)


def write_full_assets(voices: Path) -> dict[str, float]:
    """Full-size files of the real formats; returns their sizes in MB."""
    root = voices / "rvc-models"
    model = fakes.write_rvc_model(root / "default" / "default.pth", fakes.RvcFile(full_size=True))
    index = fakes.write_index(root / "default" / "default.index", 768, frames=20000)
    hubert = root / "hubert_base.pt"
    weights = {k: v.half() for k, v in fakes.fairseq_hubert_weights(REAL_HUBERT).items()}
    torch.save({"args": None, "cfg": {"model": {"encoder_attention_heads": 12}, "task": {"normalize": False}},
                "model": weights}, hubert)
    rmvpe = fakes.write_rmvpe(root / "rmvpe.pt", base=16, blocks=4, gru=256)
    return {p.name: p.stat().st_size / 2**20 for p in (model, index, hubert, rmvpe)}


@contextlib.contextmanager
def timed(store: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    store[name] = store.get(name, 0.0) + time.perf_counter() - start


def wrap(obj: Any, attr: str, store: dict[str, float], name: str) -> None:
    original = getattr(obj, attr)

    def timed_call(*args: Any, **kwargs: Any) -> Any:
        with timed(store, name):
            return original(*args, **kwargs)

    setattr(obj, attr, timed_call)


def in_process(voices: Path, repeat: int) -> dict[str, Any]:
    from providers.base import ProviderContext
    from providers.piper.config import PiperSettings
    from providers.piper.engine import PiperProvider
    from providers.rvc import runtime
    from providers.rvc.convert import Converter, ConvertOptions, resample
    from providers.rvc.hubert import load_hubert

    root = voices / "rvc-models"
    loads: dict[str, float] = {}
    with timed(loads, "model + index"):
        voice = runtime.load_voice(root / "default" / "default.pth", root / "default" / "default.index", "cpu")
    with timed(loads, "content encoder"):
        hubert = load_hubert(root / "hubert_base.pt")
    with timed(loads, "rmvpe"):
        tools = runtime.rmvpe_loader(root / "rmvpe.pt", "cpu", "")
    params = sum(p.numel() for p in voice.net.parameters())
    converter = Converter(hubert, tools, "cpu")
    stages: dict[str, float] = {}
    wrap(hubert, "rvc_features", stages, "content features")
    wrap(voice.net, "infer", stages, "synthesizer")
    assert voice.index is not None
    wrap(voice.index, "blend", stages, "index retrieval")
    original_tools = tools.rmvpe
    assert original_tools is not None
    tools.rmvpe = lambda audio: _timed_call(stages, "pitch (rmvpe)", original_tools, audio)

    ctx = ProviderContext("bench", voices.parent, (voices,))
    piper = PiperProvider()
    results: dict[str, Any] = {"loads_s": loads, "parameters_m": params / 1e6, "texts": {}}
    for label, text in TEXTS.items():
        sentences = [(resample(np.frombuffer(c.pcm, np.int16).astype(np.float32) / 32768, c.sample_rate, 16000))
                     for c in piper.synthesize(text, PiperSettings(), ctx)]
        seconds = sum(len(s) for s in sentences) / 16000
        for method in ("rmvpe", "harvest"):
            converter.convert(sentences[0], voice, ConvertOptions(), method)  # warm-up
            runs, cpu, per_stage = [], [], []
            for _ in range(repeat):
                stages.clear()
                start, start_cpu = time.perf_counter(), time.process_time()
                for sentence in sentences:
                    converter.convert(sentence, voice, ConvertOptions(f0_method=method), method)
                runs.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                per_stage.append(dict(stages))
            results["texts"][f"{label}/{method}"] = {
                "audio_s": seconds, "sentences": len(sentences), "convert_s": statistics.median(runs),
                "rtf": statistics.median(runs) / seconds, "cpu_per_audio_s": statistics.median(cpu) / seconds,
                "stages_s": {k: statistics.median(s.get(k, 0.0) for s in per_stage) for k in per_stage[0]},
            }
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def _timed_call(store: dict[str, float], name: str, fn: Callable[[Any], Any], arg: Any) -> Any:
    with timed(store, name):
        return fn(arg)


def agent_run(voices_home: Path, repeat: int) -> dict[str, Any]:
    from tests.conftest import Probe
    from tests.mosquitto import Mosquitto

    home = voices_home
    (home / "etc").mkdir(parents=True, exist_ok=True)
    (home / "etc" / "voice.json").write_text(json.dumps({"tts": {"provider": "rvc"}}))
    (home / "profiles" / "default" / "etc").mkdir(parents=True, exist_ok=True)
    (home / "profiles" / "default" / "etc" / "voice.json").write_text("{}")
    work = Path(tempfile.mkdtemp(prefix="rvc-bench-broker-"))
    broker = Mosquitto(work).start()
    log = (home / "agent.log").open("wb")
    env = {**os.environ, "VOICE_AGENT_HOME": str(home), "VOICE_AGENT_MQTT_PORT": str(broker.port),
           "VOICE_AGENT_BASE_TOPIC": "rvcbench", "VOICE_AGENT_MQTT_CLIENT_ID": f"bench-{uuid.uuid4().hex[:6]}"}
    start = time.perf_counter()
    agent = subprocess.Popen([sys.executable, "-m", "agent", "run"], cwd=home, env=env, stdout=log, stderr=log)
    out: dict[str, Any] = {}
    try:
        while "ready" not in (home / "agent.log").read_text(errors="replace"):
            if agent.poll() is not None or time.perf_counter() - start > 300:
                raise RuntimeError("agent did not start:\n" + (home / "agent.log").read_text())
            time.sleep(0.05)
        out["start_to_ready_s"] = time.perf_counter() - start
        probe = Probe(broker.port, base="rvcbench")
        try:
            def speak(text: str, stream: bool = False) -> dict[str, Any]:
                sent = time.perf_counter()
                response = probe.request("default", "speak", {"text": text, "stream": stream}, timeout=600)
                assert response["status"] == "ok" and response["data"]["provider"] == "rvc", response
                return {**response["data"], "client_ms": (time.perf_counter() - sent) * 1000}

            first = speak(TEXTS["short"] + " First.", stream=True)
            out["first_request"] = {k: first[k] for k in ("client_ms", "first_audio_ms", "audio_seconds")}
            later = [speak(f"{TEXTS['short']} Number {i}.", stream=True) for i in range(repeat)]
            out["later_requests"] = {
                "client_ms": statistics.median(r["client_ms"] for r in later),
                "first_audio_ms": statistics.median(r["first_audio_ms"] for r in later),
                "audio_seconds": statistics.median(r["audio_seconds"] for r in later),
            }
            cached = [speak(f"{TEXTS['short']} Number 0.", stream=False) for _ in range(repeat)]
            out["cached_ms"] = statistics.median(r["client_ms"] for r in cached)
        finally:
            probe.close()
        status = Path(f"/proc/{agent.pid}/status").read_text()
        out["agent_vmhwm_mb"] = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
        log.close()
        broker.stop()
    return out


def report(sizes: dict[str, float], inproc: dict[str, Any], agent: dict[str, Any], repeat: int) -> str:
    lines = [
        "### Run", "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), no GPU",
        f"- Load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "- Files (random weights, real formats and sizes): " + ", ".join(f"{k} {v:.0f} MB" for k, v in sizes.items()),
        f"- Synthesizer: v2 40k standard config, {inproc['parameters_m']:.1f}M parameters; medians of {repeat} runs",
        "", "### (a) Warm conversion in-process", "",
        "| text / f0 | audio s | sentences | convert s | RTF (wall) | CPU s per audio s | content features | pitch | index | synthesizer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in inproc["texts"].items():
        st = r["stages_s"]
        pitch = st.get("pitch (rmvpe)", r["convert_s"] - sum(st.values()))
        lines.append(
            f"| {name} | {r['audio_s']:.2f} | {r['sentences']} | {r['convert_s']:.2f} | **{r['rtf']:.2f}** | {r['cpu_per_audio_s']:.2f} | "
            f"{st.get('content features', 0):.2f} | {pitch:.2f} | {st.get('index retrieval', 0):.2f} | {st.get('synthesizer', 0):.2f} |"
        )
    lines += ["", "Load times (s): " + ", ".join(f"{k} {v:.2f}" for k, v in inproc["loads_s"].items()),
              f"; peak RSS of the bench process {inproc['peak_rss_mb']:.0f} MB.", "",
              "### (b) The agent with RVC as its default provider", "",
              "| measure | value |", "|---|---|",
              f"| start to `ready` (RVC preloaded) | {agent['start_to_ready_s']:.2f} s |",
              f"| first request after start: first audio / response | {agent['first_request']['first_audio_ms'] / 1000:.2f} s / "
              f"{agent['first_request']['client_ms'] / 1000:.2f} s ({agent['first_request']['audio_seconds']:.2f} s of audio) |",
              f"| later requests (median): first audio / response | {agent['later_requests']['first_audio_ms'] / 1000:.2f} s / "
              f"{agent['later_requests']['client_ms'] / 1000:.2f} s ({agent['later_requests']['audio_seconds']:.2f} s of audio) |",
              f"| cached request, end to end (median) | {agent['cached_ms']:.1f} ms |",
              f"| agent peak RSS (VmHWM) | {agent['agent_vmhwm_mb']:.0f} MB |"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rvc-bench-") as tmp:
        home = Path(tmp)
        sizes = write_full_assets(home / "out" / "voices")
        inproc = in_process(home / "out" / "voices", args.repeat)
        agent = agent_run(home, args.repeat)
    text = report(sizes, inproc, agent, args.repeat)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
