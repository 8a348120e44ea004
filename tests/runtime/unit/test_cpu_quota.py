"""The API sizes its decode pool and upload slots from the container's CPU quota (cgroup v2
or v1), not from the host's core count."""

from __future__ import annotations

import os
from pathlib import Path

from ocr_runtime.core.cpu import available_cpus

ALLOWED = len(os.sched_getaffinity(0))


def test_cgroup_v2_quota_rounds_up(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) == min(ALLOWED, 2)


def test_cgroup_v2_without_quota_uses_the_allowed_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == ALLOWED


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path) == ALLOWED


def test_no_cgroup_files(tmp_path: Path) -> None:
    assert available_cpus(tmp_path / "absent") == ALLOWED
