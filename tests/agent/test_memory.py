"""Where the agent's memory limit is read from (cgroup v2 and v1, the tightest of a group and its
parents) and what a job's need comes to against it. Fake /proc and /sys trees in tmp_path."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from agent.memory import MB, CgroupMemory, MemoryReport, cgroup_memory, judge, report, tree_rss


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_takes_the_tightest_memory_max_of_the_group_and_its_parents(tmp_path: Path) -> None:
    write(tmp_path / "cgroup", "0::/system.slice/voice-agent.service\n")
    root = tmp_path / "sys"
    write(root / "system.slice" / "voice-agent.service" / "memory.max", "max\n")
    write(root / "system.slice" / "voice-agent.service" / "memory.current", f"{300 * MB}\n")
    write(root / "system.slice" / "memory.max", f"{2048 * MB}\n")
    found = cgroup_memory(tmp_path / "cgroup", root)
    assert (found.limit, found.usage) == (2048 * MB, 300 * MB)
    assert found.where == str(root / "system.slice" / "memory.max")

    write(root / "system.slice" / "voice-agent.service" / "memory.max", f"{1024 * MB}\n")  # MemoryMax=1G
    assert cgroup_memory(tmp_path / "cgroup", root).limit == 1024 * MB


def test_v1_reads_the_memory_controllers_tree_and_no_limit_is_none(tmp_path: Path) -> None:
    write(tmp_path / "cgroup", "5:cpu,cpuacct:/\n4:memory:/agent/small\n0::/\n")
    root = tmp_path / "sys"
    write(root / "memory" / "agent" / "small" / "memory.limit_in_bytes", "9223372036854771712\n")
    write(root / "memory" / "agent" / "small" / "memory.usage_in_bytes", f"{100 * MB}\n")
    assert cgroup_memory(tmp_path / "cgroup", root) == CgroupMemory(None, 100 * MB, "")
    write(root / "memory" / "agent" / "small" / "memory.limit_in_bytes", f"{700 * MB}\n")
    assert cgroup_memory(tmp_path / "cgroup", root).limit == 700 * MB


def test_no_cgroup_file_is_no_limit(tmp_path: Path) -> None:
    assert cgroup_memory(tmp_path / "missing", tmp_path).limit is None


def test_a_limit_caps_what_is_available_to_what_the_group_has_left() -> None:
    found = report(CgroupMemory(limit=1000 * MB, usage=400 * MB, where="memory.max"))
    assert found.limit_mb == 1000 and found.available_mb <= 600
    assert found.agent_mb == tree_rss() // MB > 0


def test_a_need_fits_waits_or_can_never_fit() -> None:
    small = MemoryReport(agent_mb=200, available_mb=1000, total_mb=8000, limit_mb=3000, limit_from="memory.max")
    assert judge(900, small)[0] == "fits"
    verdict, why = judge(2500, small)  # under the limit, more than there is now
    assert verdict == "wait" and "2500 MB" in why and "1000 MB available" in why
    verdict, why = judge(2900, small)  # the limit less the agent's own 200 MB: never
    assert verdict == "never" and "MemoryMax of 3000 MB" in why and "2800 MB" in why
    unlimited = MemoryReport(agent_mb=200, available_mb=1000, total_mb=8000, limit_mb=None, limit_from="")
    assert judge(7000, unlimited)[0] == "wait" and judge(7900, unlimited)[0] == "never"


def test_without_proc_meminfo_the_limit_still_says_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd's ProcSubset=pid (the unit sets it) hides /proc/meminfo."""
    def hidden() -> None:
        raise FileNotFoundError("/proc/meminfo")

    monkeypatch.setattr(psutil, "virtual_memory", hidden)
    found = report(CgroupMemory(limit=1000 * MB, usage=400 * MB, where="memory.max"))
    assert (found.limit_mb, found.available_mb) == (1000, 600) and found.total_mb > 0


def test_what_the_analysis_process_holds_is_a_reason_to_wait_not_to_refuse() -> None:
    """The agent's tree holds its analysis process (about 800 MB) for two minutes after a recording."""
    scoring = MemoryReport(agent_mb=1100, available_mb=800, total_mb=8000, limit_mb=3000, limit_from="memory.max",
                           process_mb=300)
    assert judge(2500, scoring)[0] == "wait"  # 3000 less the agent's own 300 leaves room once the scorer exits
    assert judge(2800, scoring)[0] == "never" and "agent's own 300 MB" in judge(2800, scoring)[1]
