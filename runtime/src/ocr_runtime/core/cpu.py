"""How many CPUs this process may really use: the container's CPU quota (cgroup v2
`cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), else the CPUs it is allowed to
run on. `os.cpu_count()` answers the host's core count, which in a pod limited to 2 CPUs on
a 64-core node sized thread pools 30 times too large."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _quota(root: Path) -> float | None:
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
            return int(quota) / int(period)
        return None
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        quota_us, period_us = _read(v1 / "cpu.cfs_quota_us"), _read(v1 / "cpu.cfs_period_us")
        # "-1" (no quota) is not all digits, so it is skipped like a missing file.
        if quota_us and period_us and quota_us.isdigit() and period_us.isdigit():
            return int(quota_us) / int(period_us) if int(period_us) > 0 else None
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """At least 1: the quota rounded up, capped by the CPUs the scheduler allows."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    allowed = allowed or os.cpu_count() or 1
    quota = _quota(root)
    if quota is None:
        return max(1, allowed)
    return max(1, min(allowed, math.ceil(quota)))
