"""Steps shared by the suites: drive the load generator, wait for the jobs to drain, read the
database, and attribute CPU to each process while it happens."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.jobs_db import DrainTimeoutError
from benchmarks.loadgen import API_KEY_ENV
from benchmarks.procs import ProcessFailedError
from benchmarks.stack import System
from benchmarks.stats import paired_ratio, ratio

# Command-line fragments that identify the infrastructure's own processes.
INFRA_PROCESSES = {"kafka": "kafka.Kafka", "mariadb": "mariadbd", "redis": "redis-server"}


def infra_pids() -> dict[str, int]:
    found = {}
    for name, fragment in INFRA_PROCESSES.items():
        pids = procs.find_pids(fragment)
        if pids:
            found[name] = min(pids)
    return found


def run_loadgen(args: list[str], timeout: float, api_key: str | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.loadgen", *args]
    env = {key: value for key, value in os.environ.items() if key != API_KEY_ENV}
    if api_key:
        env[API_KEY_ENV] = api_key
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed ({out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def warm_up(system: System, count: int, timeout: float = 120.0) -> None:
    """A few jobs through the whole pipeline: connections open, consumers assigned, JIT-ish
    caches warm, and proof that the system works before anything is timed."""
    since = system.cutoff()
    report = run_loadgen(
        [
            "closed",
            "--url",
            system.jobs_url,
            "--count",
            str(count),
            "--concurrency",
            "8",
        ],
        timeout,
        system.api_key,
    )
    accepted = report["statuses"].get("202", 0)
    if accepted != count:
        raise RuntimeError(
            f"{system.label}: warm-up accepted {accepted}/{count}: "
            f"{report['statuses']} {report['first_error']}"
        )
    system.table.wait_finished(count, since, timeout)


def measure_closed(
    system: System, count: int, concurrency: int, timeout: float, images: Path | None = None
) -> dict[str, Any]:
    """Submit `count` jobs with `concurrency` in flight, wait until all are finished, and
    report throughput from the database's own timestamps."""
    since = system.cutoff()
    window = procs.CpuWindow({**system.measured_pids(), **infra_pids()})
    window.begin()
    started = time.monotonic()
    args = [
        "closed",
        "--url",
        system.jobs_url,
        "--count",
        str(count),
        "--concurrency",
        str(concurrency),
    ]
    if images is not None:
        args += ["--images", str(images)]
    submit = run_loadgen(args, timeout, system.api_key)
    # wait for what the API accepted; a refusal (503 while a store is busy) is reported as
    # such, not mistaken for a job the pipeline lost
    accepted = submit["statuses"].get("202", 0)
    system.table.wait_finished(accepted, since, timeout)
    wall = time.monotonic() - started
    cpu = window.end()
    times = system.table.times(since)
    span = times.span_seconds()
    return {
        "jobs": count,
        "accepted": accepted,
        "refused": {code: n for code, n in submit["statuses"].items() if code != "202"},
        "finished": times.finished,
        "statuses": times.statuses,
        "jobs_per_s": round(ratio(times.finished, span), 3),
        "span_s": round(span, 3),
        "wall_s": round(wall, 3),
        "jobs_per_s_wall": round(ratio(count, wall), 1),
        "job_latency_ms": times.latencies(),
        "timestamps_fractional": times.fractional_seconds,
        "submit": submit,
        "cpu_cores": {**cpu, "loadgen": submit["client_cpu_cores"]},
        # CPU time per job does not depend on how much CPU other tenants left us
        "cpu_ms_per_job": {
            **{name: round(cores * wall / count * 1000, 3) for name, cores in cpu.items()},
            "loadgen": round(submit["client_cpu_cores"] * submit["wall_s"] / count * 1000, 3),
        },
    }


def fastest_pass(measure: Callable[[], dict[str, Any]], passes: int) -> dict[str, Any]:
    """The fastest of `passes` runs of `measure`, with every run's jobs/s beside it. A pass
    lasts seconds, and on a shared machine a neighbour's burst only ever slows one down: the
    fastest pass is the closest reading of what a system can carry, and every system is read
    the same way."""
    return _fastest([measure() for _ in range(max(passes, 1))])


def fastest_interleaved(
    measures: Mapping[str, Callable[[], dict[str, Any]]], passes: int
) -> dict[str, dict[str, Any]]:
    """`fastest_pass` of several systems whose passes take turns (a pass of each, then the
    next round): the machine's speed drifts over minutes, and this way a slow minute falls on
    every side of a comparison instead of on whichever ran then. A system whose pass fails
    (it stopped, or did not drain) gets its error instead, and the others go on."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in measures}
    failed: dict[str, dict[str, Any]] = {}
    for _ in range(max(passes, 1)):
        for name, measure in measures.items():
            if name in failed:
                continue
            try:
                runs[name].append(measure())
            except (ProcessFailedError, DrainTimeoutError) as exc:
                failed[name] = {"error": str(exc)[:300], "jobs_per_s": math.nan}
    return {name: failed.get(name) or _fastest(runs[name]) for name in measures}


def interleaved_ratio(numerator: dict[str, Any], denominator: dict[str, Any]) -> float:
    """How two sides of `fastest_interleaved` compare: the median of their rounds' ratios
    (`paired_ratio`), or the ratio of their rows where either lacks its passes (one failed)."""
    ours = numerator.get("passes_jobs_per_s") or []
    theirs = denominator.get("passes_jobs_per_s") or []
    if ours and len(ours) == len(theirs):
        return round(paired_ratio(ours, theirs), 3)
    return round(ratio(numerator["jobs_per_s"], denominator["jobs_per_s"]), 3)


def _fastest(results: list[dict[str, Any]]) -> dict[str, Any]:
    fastest = max(results, key=lambda result: float(result["jobs_per_s"]))
    fastest["passes_jobs_per_s"] = [result["jobs_per_s"] for result in results]
    return fastest
