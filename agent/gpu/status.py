"""What the GPUs hold right now, from NVML when there is one; "no GPU" otherwise.

``GpuInfo`` is the seam: ``NvmlInfo`` is the real one (tiny, on purpose), tests pass their own.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_mb: int


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_mb: int
    used_mb: int
    processes: list[GpuProcess] = field(default_factory=list)

    @property
    def free_mb(self) -> int:
        return self.total_mb - self.used_mb


@dataclass(frozen=True)
class GpuReport:
    available: bool
    reason: str  # why there is no GPU, when there is none
    gpus: list[Gpu] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for gpu, raw in zip(self.gpus, document["gpus"], strict=True):
            raw["free_mb"] = gpu.free_mb
        return document

    def best_free_mb(self) -> int:
        return max((g.free_mb for g in self.gpus), default=0)


class GpuInfo(Protocol):
    def report(self) -> GpuReport: ...


class NvmlInfo:
    """NVIDIA GPUs through NVML (nvidia-ml-py); a machine without them reports "no GPU"."""

    def __init__(self) -> None:
        self._ready: bool | None = None
        self._reason = ""

    def _init(self) -> bool:
        if self._ready is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                self._ready = True
            except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, driver errors
                self._ready, self._reason = False, f"no GPU: NVML unavailable ({exc})"
                log.info("%s", self._reason)
        return self._ready

    def report(self) -> GpuReport:
        if not self._init():
            return GpuReport(False, self._reason)
        import pynvml

        try:
            gpus = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                processes = [
                    GpuProcess(p.pid, _process_name(p.pid), int((p.usedGpuMemory or 0) // 2**20))
                    for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                ]
                name = pynvml.nvmlDeviceGetName(handle)
                gpus.append(Gpu(index, name.decode() if isinstance(name, bytes) else str(name),
                                int(memory.total // 2**20), int(memory.used // 2**20), processes))
        except Exception as exc:
            return GpuReport(False, f"no GPU: NVML query failed ({exc})")
        if not gpus:
            return GpuReport(False, "no GPU: NVML found no devices")
        return GpuReport(True, "", gpus)


def _process_name(pid: int) -> str:
    try:
        import psutil

        return str(psutil.Process(pid).name())
    except Exception:
        return "?"
