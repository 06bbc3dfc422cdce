"""How much memory the agent holds and how much a new job may still take, said before it hurts.

The agent's own figure is the resident memory (RSS) of its whole process tree: the agent, its
analysis process, a training job's process. What a job may take is the smaller of what the
machine has available (``MemAvailable``) and what the agent's control group still allows (its
``MemoryMax`` under systemd: cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``, the
tightest of the group and its parents, less what the group uses). A training job that could
never fit is refused (``not_enough_memory``); one that does not fit now waits, with the reason in
its status, instead of being killed half-way by the kernel.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

log = logging.getLogger(__name__)

MB = 1024 * 1024
NO_LIMIT = 2**60  # v1 writes "no limit" as a page-rounded 2^63; anything this large is none
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class CgroupMemory:
    """The agent's control group: its limit (bytes, None without one) and what it uses now."""

    limit: int | None
    usage: int | None
    where: str  # the file the limit was read from ("" when none was found)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= NO_LIMIT else value


def cgroup_memory(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> CgroupMemory:
    """The limit that applies to this process: the tightest ``memory.max`` (v2) or
    ``memory.limit_in_bytes`` (v1) of its group and the groups above it."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return CgroupMemory(None, None, "")
    for line in lines:
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":  # v2: one unified tree
            base, limit_file, usage_file = root, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # v1: the memory controller's own tree
            base, limit_file, usage_file = root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        group = base / path.strip("/")
        if not (group / limit_file).exists():
            continue  # v2 line of a v1 host (or the other way round): try the next line
        limit, where, folder = None, "", group
        while True:
            found = _read_int(folder / limit_file)
            if found is not None and (limit is None or found < limit):
                limit, where = found, str(folder / limit_file)
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
        return CgroupMemory(limit, _read_int(group / usage_file), where)
    return CgroupMemory(None, None, "")


def tree_rss(pid: int | None = None) -> int:
    """Bytes resident in the process and all its descendants (shared libraries counted in each)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def own_rss() -> int:
    try:
        return int(psutil.Process().memory_info().rss)
    except psutil.Error:
        return 0


@dataclass(frozen=True)
class MemoryReport:
    """What /api/health and the "gpu" state document say of memory (MB)."""

    agent_mb: int  # the agent's process tree, resident
    available_mb: int  # what a new job may take now: the machine's available, within the limit
    total_mb: int  # the machine's memory
    limit_mb: int | None  # the agent's MemoryMax; None: no limit
    limit_from: str  # where the limit was read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    process_mb: int = 0  # the agent's own process: its children (the analysis process, a job) come and go

    @property
    def ceiling_mb(self) -> int:
        """The most a job could ever have: the limit (or the machine) less the agent's own
        process (the analysis process that may run beside it now exits when idle: what it holds
        is a reason to wait, not to refuse)."""
        return (self.limit_mb if self.limit_mb is not None else self.total_mb) - (self.process_mb or self.agent_mb)


def machine_memory() -> tuple[int, int | None]:
    """(total, available) bytes of the machine. The unit's ``ProcSubset=pid`` hides
    ``/proc/meminfo``: then the total comes from sysconf and what is available is not known."""
    try:
        machine = psutil.virtual_memory()
        return machine.total, machine.available
    except OSError:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), None


def report(cgroup: CgroupMemory | None = None) -> MemoryReport:
    group = cgroup if cgroup is not None else cgroup_memory()
    total, known = machine_memory()
    agent = tree_rss()
    available = known if known is not None else max(0, total - agent)  # not known: only a need beyond it all waits
    if group.limit is not None:
        used = group.usage if group.usage is not None else agent
        available = min(available, max(0, group.limit - used))
    return MemoryReport(agent // MB, available // MB, total // MB,
                        None if group.limit is None else group.limit // MB, group.where, own_rss() // MB)


Verdict = Literal["fits", "wait", "never"]


def judge(need_mb: int, found: MemoryReport) -> tuple[Verdict, str]:
    """Whether a job that needs ``need_mb`` fits now, must wait for memory, or can never run here;
    and why, in words every door shows as they are."""
    limit = (f"the agent's MemoryMax of {found.limit_mb} MB" if found.limit_mb is not None
             else f"this machine's {found.total_mb} MB")
    if need_mb > found.ceiling_mb:
        own = found.process_mb or found.agent_mb
        return "never", (f"needs about {need_mb} MB of memory; {limit} leaves {max(0, found.ceiling_mb)} MB beside "
                         f"the agent's own {own} MB; raise MemoryMax or train on a larger machine")
    if need_mb > found.available_mb:
        # available in hundreds: the job's status changes when the figure does, not with every page cached
        return "wait", f"waiting for memory: needs about {need_mb} MB, {round(found.available_mb, -2)} MB available now"
    return "fits", f"needs about {need_mb} MB, {found.available_mb} MB available"
