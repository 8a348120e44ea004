"""Suite 2: plumbing capacity with the zero-cost engine, jobs/s end to end and job latency,
for our three modes, for the Celery-on-Redis baseline of seed 003 and for Ray Serve's
`@serve.batch` (`benchmarks/ray_baseline`), in one run."""

from __future__ import annotations

import math
from typing import Any

from benchmarks import db_paths
from benchmarks.baselines import CeleryStack, RayServeStack
from benchmarks.context import Ctx, Target
from benchmarks.jobs_db import DrainTimeoutError
from benchmarks.procs import ProcessFailedError
from benchmarks.runner import fastest_pass, measure_closed, warm_up
from benchmarks.stack import RuntimeStack, StackSpec, System
from benchmarks.stats import ratio

CAPACITY_GOAL = 1000.0  # jobs/s, batched and writer mode, 2 cores
STANDARD_GOAL = 500.0  # jobs/s, standard mode (one job at a time in the engine)
CELERY_TIMES = 5.0  # batched and writer over the Celery baseline
RAY_TIMES = 3.0  # batched and writer over Ray Serve
RAY = "ray serve"
# Batches big enough that a noop batch costs one database transaction per 64 jobs; the
# engine comparison keeps the runtime's default size instead.
PLUMBING_BATCH = 64
# Every system's HTTP front runs two processes: a default OCRServing's two API pods, uvicorn
# workers for Celery's FastAPI, ingress replicas for Ray Serve. With one, the front's event
# loop held a fair share of two cores among six busy processes and bounded the closed loop
# while a quarter of the machine stayed idle (writer mode 610 to 730 jobs/s on one process,
# 900 to 1,005 on two, alternating; the jobs finished as fast as they were created).
PLUMBING_API_PROCESSES = 2


def _specs(ctx: Ctx) -> dict[str, StackSpec]:
    """Our systems by name. The last is a variant, not a target: batched with image blobs on
    the filesystem, which shows what one database transaction per upload costs."""
    blob_dir = (ctx.results_dir / "blobs").resolve()
    return {
        "standard": StackSpec(
            label="noop-standard",
            mode="standard",
            engine="noop",
            api_processes=PLUMBING_API_PROCESSES,
        ),
        "batched": StackSpec(
            label="noop-batched",
            mode="batched",
            engine="noop",
            batch_max_size=PLUMBING_BATCH,
            api_processes=PLUMBING_API_PROCESSES,
        ),
        "writer": StackSpec(
            label="noop-writer",
            mode="writer",
            engine="noop",
            batch_max_size=PLUMBING_BATCH,
            api_processes=PLUMBING_API_PROCESSES,
        ),
        "batched, blobs on disk": StackSpec(
            label="noop-batched-fsblobs",
            mode="batched",
            engine="noop",
            batch_max_size=PLUMBING_BATCH,
            api_processes=PLUMBING_API_PROCESSES,
            extra_env={"OCR_BLOB_BACKEND": "filesystem", "OCR_BLOB_DIR": str(blob_dir)},
        ),
    }


def _measure(ctx: Ctx, system: System, goal: float) -> dict[str, Any]:
    cfg = ctx.config
    jobs = cfg.plumbing_jobs
    with system:
        ctx.watch(system)
        warm_up(system, cfg.warmup_jobs)
        result = fastest_plumbing_pass(ctx, system)
        result["startup_s"] = getattr(system, "startup_s", {})
        print(
            f"[bench]   {system.label}: {result['jobs_per_s']} jobs/s (passes "
            f"{result['passes_jobs_per_s']}), job p99 "
            f"{result['job_latency_ms']['p99']:.0f} ms, cpu {result['cpu_cores']}",
            flush=True,
        )
        if ctx.profile and result["jobs_per_s"] < goal:
            result["profile"] = ctx.profile_closed(system, jobs // 2, cfg.plumbing_concurrency)
        ctx.remember_memory(system)
    return result


def plumbing_pass(ctx: Ctx, system: System) -> dict[str, Any]:
    """One closed-loop pass of the zero-cost engine at the config's size."""
    cfg = ctx.config
    return measure_closed(system, cfg.plumbing_jobs, cfg.plumbing_concurrency, cfg.drain_timeout_s)


def fastest_plumbing_pass(ctx: Ctx, system: System) -> dict[str, Any]:
    """The config's closed-loop passes of the zero-cost engine, read by the fastest."""
    return fastest_pass(lambda: plumbing_pass(ctx, system), ctx.config.plumbing_passes)


def _or_error(ctx: Ctx, system: System, goal: float) -> dict[str, Any]:
    """One system's result, or the reason it has none: a system that fails to start or to
    drain is reported as not measured, and the suite goes on with the others."""
    try:
        return _measure(ctx, system, goal)
    except (ProcessFailedError, DrainTimeoutError) as exc:
        print(f"[bench]   not measured: {exc}", flush=True)
        return {"error": str(exc)[:300], "jobs_per_s": math.nan}


def _ray(ctx: Ctx) -> dict[str, Any]:
    stack = RayServeStack(
        ctx.services,
        ctx.log_dir,
        label="noop-ray",
        engine="noop",
        max_batch_size=PLUMBING_BATCH,
        batch_wait_s=0.02,
        ingress_replicas=PLUMBING_API_PROCESSES,
    )
    result = _or_error(ctx, stack, 0.0)
    result["settings"] = stack.settings()
    result["processes_left_after_stop"] = len(stack.leftover)
    return result


def _targets(
    results: dict[str, Any], to_celery: dict[str, float], to_ray: dict[str, float]
) -> list[Target]:
    standard = results["standard"]["jobs_per_s"]
    targets = [
        Target(
            "plumbing: standard jobs/s",
            f">= {STANDARD_GOAL:.0f}/s",
            standard,
            standard >= STANDARD_GOAL,
            "jobs/s",
        )
    ]
    for mode in ("batched", "writer"):
        rate = results[mode]["jobs_per_s"]
        targets += [
            Target(
                f"plumbing: {mode} jobs/s",
                f">= {CAPACITY_GOAL:.0f}/s",
                rate,
                rate >= CAPACITY_GOAL,
                "jobs/s",
            ),
            Target(
                f"plumbing: {mode} vs Ray Serve",
                f">= {RAY_TIMES:.0f}x",
                to_ray[mode],
                to_ray[mode] >= RAY_TIMES,
                "x",
            ),
            Target(
                f"plumbing: {mode} vs Celery",
                f">= {CELERY_TIMES:.0f}x",
                to_celery[mode],
                to_celery[mode] >= CELERY_TIMES,
                "x",
            ),
        ]
    return targets


def run(ctx: Ctx) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, spec in _specs(ctx).items():
        goals = {"batched": CAPACITY_GOAL, "writer": CAPACITY_GOAL, "standard": STANDARD_GOAL}
        goal = goals.get(name, 0.0)
        stack = RuntimeStack(ctx.services, spec, ctx.log_dir)
        results[name] = _or_error(ctx, stack, goal)
        results[name]["settings"] = spec.settings()
    celery = CeleryStack(ctx.services, ctx.log_dir, api_processes=PLUMBING_API_PROCESSES)
    results["celery"] = _or_error(ctx, celery, 0.0)
    results["celery"]["settings"] = {
        "design": "seed 003: FastAPI -> Celery (Redis broker and "
        "result backend, prefork pool) -> MariaDB",
        "api_processes": PLUMBING_API_PROCESSES,
    }
    results[RAY] = _ray(ctx)
    to_celery = _ratios(results, "celery")
    to_ray = _ratios(results, RAY)
    targets = _targets(results, to_celery, to_ray)
    summary: dict[str, Any] = {
        "concurrency": ctx.config.plumbing_concurrency,
        "api_processes": PLUMBING_API_PROCESSES,
        "systems": results,
        "ratio_to_celery": to_celery,
        "ratio_to_ray": to_ray,
        "targets": [target.as_dict() for target in targets],
    }
    if ctx.profile and not all(target.met for target in targets):
        summary["api_database_paths"] = db_paths.run(ctx.services.database_url)
    return summary


def _ratios(results: dict[str, Any], baseline: str) -> dict[str, float]:
    rate = results[baseline]["jobs_per_s"]
    return {name: round(ratio(system["jobs_per_s"], rate), 2) for name, system in results.items()}
