#!/usr/bin/env python3
"""Where a Kokoro voicepack training step's memory goes (issue 24): Kokoro converted to torch, then
one gradient step on the style (the descent's step, with a plain loss) of a sentence cut at N
phonemes, in float32 or under CPU autocast to bfloat16, whole or with the graph cut into pieces
recomputed in the backward pass (``--segments``). Each setting runs in a process of its
own; the figures are its RSS after the conversion and its peak (``ru_maxrss``).

    .venv/bin/python bench/voicepack_step_memory.py --cuts 32,64 --dtypes float32,bfloat16
    .venv/bin/python bench/voicepack_step_memory.py --cuts 64 --dtypes float32 --segments 0,4,8,16

Needs the Kokoro models of a prepared home (tests/providers/kokoro/models.py makes one under
/tmp/bench-memory, as bench/memory.py does)."""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TEXT = ("The meeting has been moved to three o'clock this afternoon, so please tell everyone in the office "
        "before lunch and bring the reports.")
MB = 1024 * 1024


def rss_mb() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss // MB)


def child(cut: int, dtype: str, segments: int, mapped: bool) -> dict[str, object]:
    import numpy as np
    import torch

    from providers.common.process import map_large_allocations, release_free_memory
    from providers.kokoro.config import KokoroSettings
    from providers.kokoro.engine import KokoroProvider
    from providers.kokoro.style_descent import F0_CURVE
    from providers.kokoro.torch_graph import load_differentiable, recompute_in_segments
    from providers.kokoro.voices import VoiceLibrary
    from tests.contexts import home_context
    from tests.providers.kokoro.models import install_models, prepared_models

    class Factory:
        @staticmethod
        def getbasetemp() -> Path:
            return Path(tempfile.gettempdir()) / "bench-memory"

    torch.set_num_threads(1)
    if mapped:
        map_large_allocations()
    home = Path(tempfile.mkdtemp())
    (home / "profiles" / "default").mkdir(parents=True)
    install_models(prepared_models(Factory()), home)  # type: ignore[arg-type]
    ctx = home_context(home)
    settings = KokoroSettings.model_validate({"langCode": "a", "voice": "jm_kumo"})
    engine = KokoroProvider()
    tokens = engine.tokens(settings, ctx, engine.phonemize(settings, ctx, TEXT))[:cut]
    base = VoiceLibrary().style("jm_kumo", "", ctx)[0]
    path = engine.float_model(settings, ctx)
    engine.close()
    found: dict[str, object] = {"cut": cut, "dtype": dtype, "segments": segments, "mapped": mapped, "before_model_mb": rss_mb()}
    model = load_differentiable(path, (F0_CURVE,))
    found["converted_mb"] = rss_mb()
    gc.collect()
    release_free_memory()
    found["converted_trimmed_mb"] = rss_mb()
    rows = np.asarray(base, np.float32).reshape(-1, 256)
    style = torch.tensor(rows[len(tokens) - 1]).unsqueeze(0).requires_grad_(True)
    inputs = (torch.tensor([[0, *tokens, 0]]), style, torch.tensor([1.0]))
    if segments:
        model = recompute_in_segments(model, (inputs[0], style.detach(), inputs[2]), segments)
        gc.collect()
        release_free_memory()
        found["split_mb"] = rss_mb()
    torch.manual_seed(0)
    began, cpu = time.perf_counter(), time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
        out = model(*inputs)
        audio = out[0].float()
        loss = audio.pow(2).mean()
    found["forward_mb"] = rss_mb()
    found["forward_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    loss.backward()
    found["step_seconds"] = round(time.perf_counter() - began, 1)
    found["step_cpu_seconds"] = round(time.process_time() - cpu, 1)
    found["audio_seconds"] = round(audio.numel() / 24000, 2)
    found["gradient_finite"] = bool(torch.isfinite(style.grad).all()) if style.grad is not None else False
    found["gradient_head"] = [float(g) for g in style.grad.reshape(-1)[:3]] if style.grad is not None else []
    found["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return found


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5] == "mapped")))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", default="32,64")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--segments", default="0", help="pieces recomputed in the backward pass (0: none), comma-separated")
    parser.add_argument("--malloc", default="heap", help="heap (glibc's default), mapped (map_large_allocations), or both")
    args = parser.parse_args()
    for cut in (int(c) for c in args.cuts.split(",")):
        for dtype in args.dtypes.split(","):
            for segments in (int(n) for n in args.segments.split(",")):
                for malloc in ("heap", "mapped") if args.malloc == "both" else (args.malloc,):
                    done = subprocess.run([sys.executable, __file__, "--child", str(cut), dtype, str(segments), malloc],
                                          capture_output=True, text=True)
                    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else json.dumps(
                        {"cut": cut, "dtype": dtype, "segments": segments, "failed": done.stderr.strip().splitlines()[-1:]})
                    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
