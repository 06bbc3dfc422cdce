"""Where RVC runs, decided in one place.

A *GPU guard* is a context manager factory ``guard(need_mb, purpose, pause_hogs)`` that yields
"cuda" or "cpu" for the work inside it. The agent's GPU arbiter (``agent.gpu.arbiter.GpuArbiter.reserve``)
has this shape: it checks free VRAM, pauses GPU hogs such as Ollama when ``pause_hogs`` is true
(``pauseOllamaDuringInference``) and resumes them afterwards. Without it, ``local_guard`` uses CUDA
whenever torch sees a GPU and pauses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Literal

log = logging.getLogger(__name__)

GpuGuard = Callable[[int, Literal["training", "rvc"], bool], AbstractContextManager[str]]
NEED_MB = 2048  # synthesizer + content encoder + RMVPE + activations of a long sentence, fp32


@contextmanager
def local_guard(need_mb: int, purpose: Literal["training", "rvc"], pause_hogs: bool) -> Iterator[str]:
    import torch

    yield "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def device_for(setting: str, guard: GpuGuard, pause_hogs: bool) -> Iterator[str]:
    """The device for one request under ``setting`` (auto | cpu | cuda)."""
    if setting == "cpu":
        yield "cpu"
        return
    with guard(NEED_MB, "rvc", pause_hogs) as device:
        if setting == "cuda" and device != "cuda":
            log.warning("tts.rvc.device is cuda but no GPU is usable now; converting on the CPU")
        yield device
