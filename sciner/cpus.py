"""How many CPUs this process may really use: the cgroup CPU quota (a container's CPU limit),
else the CPU affinity mask, else the machine's count.

``os.sched_getaffinity`` sees the node's cores in a Kubernetes pod: a pod limited to 2 CPUs on a
64-core node would size its thread pools for 64 and be throttled. The quota files:

* cgroup v2: ``/sys/fs/cgroup/cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``;
* cgroup v1: ``/sys/fs/cgroup/cpu/cpu.cfs_quota_us`` (``-1`` = no limit) and ``cpu.cfs_period_us``.

A fractional quota is rounded down (1.5 CPUs → 1 thread), never below 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_from_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line; None when unlimited or unreadable."""
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def quota_from_cfs(quota_us: str, period_us: str) -> float | None:
    """CPUs allowed by cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; None when unlimited."""
    try:
        quota, period = int(quota_us.strip()), int(period_us.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup (v2 first, then v1); None without a limit."""
    try:
        return quota_from_cpu_max((root / "cpu.max").read_text())
    except OSError:
        pass
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        try:
            return quota_from_cfs((v1 / "cpu.cfs_quota_us").read_text(), (v1 / "cpu.cfs_period_us").read_text())
        except OSError:
            continue
    return None


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (the machine's count where that is not available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def combine(affinity: int, quota: float | None) -> int:
    """Threads worth running: the affinity count, capped by the quota rounded down (at least 1)."""
    if quota is None:
        return max(1, affinity)
    return max(1, min(affinity, math.floor(quota)))


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: min(affinity, cgroup quota), at least 1."""
    return combine(affinity_cpus(), cgroup_cpu_quota(root))
