"""Make the Kokoro model fast on this machine, once, and remember the choice.

The shipped model is dynamically quantized (int8). On CPUs without fast int8 kernels ONNX
Runtime runs it slower than the same network in float, so at first use the model is folded
back to float (``providers.kokoro.fold``), its graph rewritten for ONNX Runtime's faster kernels
(``providers.kokoro.fast_graph``: 12 % off a paragraph on an Intel Xeon) and saved beside the
source, and both variants are timed on a short utterance; the faster one is written to
``<model>.runtime.json`` and used from then on. Nothing is re-timed until the source model,
ONNX Runtime or the CPU changes.

The agent never makes a request wait for this (it took 42-72 s on a loaded 2-core machine): the
engine answers with the int8 model as shipped (``interim_runtime``) and prepares in a thread of
its own at the lowest CPU priority, switching once the choice is made (``engine.py``). The fold
itself runs in a short-lived process (``python -m providers.kokoro.prepare SOURCE TARGET``): in
the agent's process it held the interpreter for up to 2.3 s at a time (parsing and writing a
325 MB graph), which stalled a request speaking meanwhile, and it peaked at 2 GB there.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from providers.base import ProviderError
from providers.common.onnx_arena import with_arena
from providers.common.onnx_spinning import with_spinning
from providers.common.process import child_failure
from providers.kokoro.assets import ModelSource

log = logging.getLogger(__name__)

FOLD_VERSION = 2  # 2: the float graph rewritten for ONNX Runtime's faster kernels (fast_graph.py)
Variant = Literal["float", "int8"]
Optimize = Literal["auto", "float", "int8"]
QUANTIZED_OPS = {"MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM"}
# A fixed English phrase, long enough that the vocoder dominates as it does in real use.
CALIBRATION_PHONEMES = "tˈaɪmɪŋ ɐ ʃˈɔːɹt sˈɛntəns ˌɔn ðɪs kəmpjˈuːɾɚ, ænd pˈɪkɪŋ ðə fˈæstɚ mˈɑːdəl."


@dataclass(frozen=True)
class Runtime:
    """What to load: the ONNX file, its variant and the thread count."""

    path: Path
    variant: Variant
    threads: int
    timings: dict[str, float]  # variant -> best seconds for the calibration phrase

    @property
    def tag(self) -> str:
        return f"{self.variant}{FOLD_VERSION if self.variant == 'float' else ''}"


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads: int, arena: bool = True, spinning: bool = False) -> Any:
    """``arena``: ONNX Runtime's CPU buffer arena (providers/common/onnx_arena.py); ``spinning``:
    its threads spin while waiting for work (providers/common/onnx_spinning.py)."""
    import onnxruntime as ort

    options = with_arena(ort.SessionOptions(), arena)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Threads that spin while waiting for work steal the CPU from everything else on a small
    # shared machine, and measured no faster here (bench/kokoro_speed.py): off unless the host says.
    with_spinning(options, spinning)
    options.log_severity_level = 3  # the folded graph is valid; ORT's shape-merge warnings are noise
    return options


def open_session(path: Path, threads: int, arena: bool = True, spinning: bool = False) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), session_options(threads, arena, spinning), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        raise ProviderError(f"cannot load Kokoro model {path}: {exc}") from exc


def is_quantized(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(node.op_type in QUANTIZED_OPS for node in model.graph.node)


def folded_path(source: ModelSource, directory: Path, version: int = FOLD_VERSION) -> Path:
    return directory / f"kokoro-{source.key}.float{version}.onnx"


def folded(source: ModelSource, directory: Path) -> Path:
    """The float version of ``source`` in ``directory``, folded now if it is not there yet; an
    earlier fold of it (an older ``FOLD_VERSION``, never read again) is removed."""
    target = folded_path(source, directory)
    if not target.is_file():
        fold_apart(source.path, target)
        for older in range(1, FOLD_VERSION):
            folded_path(source, directory, older).unlink(missing_ok=True)
    return target


FOLD_TIMEOUT = 900.0  # seconds: 6 on 2 idle cores, a minute or more on a loaded one


def fold_apart(source: Path, target: Path, timeout: float = FOLD_TIMEOUT) -> None:
    """``fold_to`` in a child process (at this thread's priority, which it inherits)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "providers.kokoro.prepare", str(source), str(target)]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProviderError(f"folding Kokoro model {source.name} took over {timeout:g} s") from None
    if done.returncode != 0 or not target.is_file():
        raise ProviderError(f"folding Kokoro model {source.name} failed: {child_failure(done.stderr, done.returncode)}")
    log.info("Kokoro: folded %s to float in a process of its own in %.1f s -> %s", source.name,
             time.monotonic() - started, target)


def fold_to(source: Path, target: Path) -> None:
    """Write the float version of ``source`` to ``target`` atomically."""
    import onnx

    from providers.kokoro.fast_graph import speed_up
    from providers.kokoro.fold import fold_dynamic_quantization

    started = time.monotonic()
    model = onnx.load(str(source))
    stats = fold_dynamic_quantization(model)
    if stats.skipped:
        log.warning("Kokoro: %d quantized nodes kept as they are: %s", len(stats.skipped), stats.skipped[:3])
    speed_up(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("Kokoro: folded %d quantized nodes to float in %.1f s -> %s", stats.folded, time.monotonic() - started, target)


def calibration_tokens() -> list[int]:
    from kokoro_onnx.config import DEFAULT_VOCAB

    return [DEFAULT_VOCAB[p] for p in CALIBRATION_PHONEMES if p in DEFAULT_VOCAB]


ROUNDS = 4  # interleaved timings of each variant
FLOAT_MARGIN = 0.95  # float must be at least 5 % faster to replace int8, the bench's answer on small CPUs
CHOOSER = 2  # choices recorded by an older way of timing are made again (1: best of two, one variant after the other)


Activity = Callable[[], int]  # the engine's inferences so far, once none is running (it waits for one to end)
RETAKES = 40  # a run that overlapped speech is taken again, up to this many times per run ...
RETAKE_PAUSE_S = 0.25  # ... after this pause


def time_sessions(sessions: dict[str, Any], rounds: int = ROUNDS, activity: Activity | None = None) -> dict[str, float]:
    """Median seconds per session for the calibration phrase, the sessions taking turns (in a
    changing order) so that load from other work on a shared machine falls on both alike. A run
    during which the engine spoke (``activity`` moved) is taken again: the preparation runs in the
    agent's first minute, when requests may come, and a request's inference beside a timed run
    slows that run alone (the float variant's lead here was 17 %, the margin asks for 5)."""
    feeds = {
        "tokens": np.array([[0, *calibration_tokens(), 0]], np.int64),
        "style": np.full((1, 256), 0.05, np.float32),
        "speed": np.array([1.0], np.float32),
    }
    for session in sessions.values():
        session.run(None, feeds)  # warm-up: first-run allocations
    times: dict[str, list[float]] = {name: [] for name in sessions}
    names = list(sessions)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            times[name].append(_quiet_run(sessions[name], feeds, activity))
    return {name: float(np.median(values)) for name, values in times.items()}


def _quiet_run(session: Any, feeds: dict[str, Any], activity: Activity | None) -> float:
    """Seconds of one run that no speech overlapped (the last try's after ``RETAKES``)."""
    for _ in range(RETAKES):
        before = activity() if activity is not None else 0
        started = time.perf_counter()
        session.run(None, feeds)
        seconds = time.perf_counter() - started
        if activity is None or activity() == before:
            return seconds
        time.sleep(RETAKE_PAUSE_S)
    return seconds


def faster_variant(timings: dict[str, float]) -> Variant:
    """int8 unless float is clearly faster: a close call is noise, and int8 is the smaller model."""
    return "float" if timings["float"] < timings["int8"] * FLOAT_MARGIN else "int8"


def machine_id() -> str:
    import onnxruntime as ort

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}|{model}|{cpu_count()}|ort {ort.__version__}"


def ready_runtime(source: ModelSource, directory: Path, optimize: Optimize, threads: int) -> Runtime | None:
    """The runtime ``choose_runtime`` would give, when that needs no folding and no timing (a
    quick look at files); None while the model still has to be prepared here."""
    threads = threads or cpu_count()
    float_path = folded_path(source, directory)
    if optimize == "int8" or not is_quantized(source.path):
        return choose_runtime(source, directory, optimize, threads)
    if not float_path.is_file():
        return None
    if optimize == "float":
        return Runtime(float_path, "float", threads, {})
    saved = _read_choice(directory / f"kokoro-{source.key}.runtime.json", threads)
    if saved is None:
        return None
    variant, timings = saved
    return Runtime(float_path if variant == "float" else source.path, variant, threads, timings)


def interim_runtime(source: ModelSource, threads: int) -> Runtime:
    """What speaks while the model is being prepared: the model as shipped."""
    return Runtime(source.path, "int8", threads or cpu_count(), {})


def choose_runtime(source: ModelSource, directory: Path, optimize: Optimize, threads: int,
                   activity: Activity | None = None) -> Runtime:
    """The variant to run for ``source`` on this machine (folding and timing once if needed);
    ``activity``: the engine's inferences, when it speaks while this times (``time_sessions``)."""
    threads = threads or cpu_count()
    if not is_quantized(source.path):
        return Runtime(source.path, "float", threads, {})
    if optimize == "int8":
        return Runtime(source.path, "int8", threads, {})
    float_path = folded(source, directory)
    if optimize == "float":
        return Runtime(float_path, "float", threads, {})
    record = directory / f"kokoro-{source.key}.runtime.json"
    saved = _read_choice(record, threads)
    if saved is not None:
        variant, timings = saved
    else:
        sessions = {"int8": open_session(source.path, threads), "float": open_session(float_path, threads)}
        timings = time_sessions(sessions, activity=activity)
        variant = faster_variant(timings)
        _write_choice(record, variant, threads, timings)
        log.info("Kokoro: %s is faster here (int8 %.2f s, float %.2f s)", variant, timings["int8"], timings["float"])
    return Runtime(float_path if variant == "float" else source.path, variant, threads, timings)


def _read_choice(path: Path, threads: int) -> tuple[Variant, dict[str, float]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("machine") != machine_id() or data.get("threads") != threads or data.get("variant") not in ("float", "int8"):
        return None
    if data.get("chooser") != CHOOSER or data.get("fold_version") != FOLD_VERSION:
        return None  # timed another way, or against an earlier fold
    return data["variant"], {k: float(v) for k, v in data.get("timings", {}).items()}


def _write_choice(path: Path, variant: Variant, threads: int, timings: dict[str, float]) -> None:
    from providers.common.files import atomic_write_text

    document = {"variant": variant, "threads": threads, "timings": timings, "machine": machine_id(),
                "fold_version": FOLD_VERSION, "chooser": CHOOSER}
    atomic_write_text(path, json.dumps(document, indent=2) + "\n")


def main(argv: list[str]) -> int:
    """The child of ``fold_apart``: SOURCE TARGET."""
    logging.basicConfig(level=logging.WARNING)
    fold_to(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
