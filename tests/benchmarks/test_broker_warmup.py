"""The broker's warm-up before the suites: it sends its jobs through a real stack and Kafka,
records every pass, and the report's machine table shows the curve."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from benchmarks.config import QUICK
from benchmarks.context import Ctx
from benchmarks.services import Services

from benchmarks import warm

pytestmark = pytest.mark.integration


def test_the_warmup_runs_its_passes_through_kafka_and_reports_each(tmp_path: Path) -> None:
    ctx = Ctx(config=QUICK, services=Services.from_env(), results_dir=tmp_path, profile=False)
    result = warm.run(ctx, jobs=250, pass_jobs=100)
    passes = result["passes"]
    assert len(passes) == 3  # 250 jobs in passes of 100: the last one whole
    assert all(p["jobs_per_s"] > 0 for p in passes)
    # the broker's CPU is read from its own process, and it did work for every pass
    assert all(p["kafka_cpu_ms_per_job"] > 0 for p in passes)
    assert result["settings"]["mode"] == "writer"
    line = warm.summary_line(result)
    assert line.startswith("3 passes of 100 jobs")
    assert f"{passes[-1]['kafka_cpu_ms_per_job']:.2f} ms" in line


def test_the_machine_table_says_when_there_was_no_warmup_or_it_failed() -> None:
    assert warm.summary_line(None).startswith("none")
    assert warm.summary_line({"error": "ProcessFailedError: api exited"}) == (
        "failed: ProcessFailedError: api exited"
    )
    shown = warm.summary_line(
        {"pass_jobs": 3000, "passes": [{"jobs_per_s": 700.0, "kafka_cpu_ms_per_job": math.pi}]}
    )
    assert shown.endswith("pass by pass: 3.14 ms")
