"""The Ray Serve baseline of the benchmarks, on the shared MariaDB: it serves every job it
accepts and leaves no Ray process behind. Counts only; its speed is `make bench`'s business."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.baselines import RayServeStack
from benchmarks.runner import measure_closed
from benchmarks.services import Services

from benchmarks import procs

pytestmark = pytest.mark.integration

JOBS = 40


def test_ray_serve_baseline_finishes_every_job_and_shuts_down_cleanly(tmp_path: Path) -> None:
    stack = RayServeStack(
        Services.from_env(),
        tmp_path,
        label="test-ray-baseline",
        engine="noop",
        max_batch_size=8,
        batch_wait_s=0.02,
        ingress_replicas=2,  # as the plumbing suite runs it
    )
    with stack:
        tree = procs.process_tree(stack.processes["ray"].pid)
        assert len(tree) > 3, "Ray's own processes (GCS, raylet, workers) run under it"
        result = measure_closed(stack, JOBS, 8, timeout=240.0)
    assert result["submit"]["statuses"] == {"202": JOBS}
    assert result["finished"] == JOBS
    assert result["statuses"] == {"succeeded": JOBS}
    assert stack.leftover == [], "Ray processes outlived the baseline's stop"
    assert [pid for pid in tree if procs.alive(pid)] == []
