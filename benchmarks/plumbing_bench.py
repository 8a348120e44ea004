"""Suite 2: plumbing capacity with the zero-cost engine, jobs/s end to end and job latency,
for our three modes and for the Celery-on-Redis baseline of seed 003, in one run."""

from __future__ import annotations

from typing import Any

from benchmarks import db_paths
from benchmarks.context import Ctx, Target
from benchmarks.runner import measure_closed, warm_up
from benchmarks.stack import CeleryStack, RuntimeStack, StackSpec, System
from benchmarks.stats import ratio

CAPACITY_GOAL = 1000.0  # jobs/s, batched and writer mode, 2 cores
SEVERAL_TIMES = 3.0  # "several times the Celery baseline"
# Batches big enough that a noop batch costs one database transaction per 64 jobs; the
# engine comparison keeps the runtime's default size instead.
PLUMBING_BATCH = 64


def _specs(ctx: Ctx) -> dict[str, StackSpec]:
    """Our systems by name. The last is a variant, not a target: batched with image blobs on
    the filesystem, which shows what one database transaction per upload costs."""
    blob_dir = (ctx.results_dir / "blobs").resolve()
    return {
        "standard": StackSpec(label="noop-standard", mode="standard", engine="noop"),
        "batched": StackSpec(
            label="noop-batched", mode="batched", engine="noop", batch_max_size=PLUMBING_BATCH
        ),
        "writer": StackSpec(
            label="noop-writer", mode="writer", engine="noop", batch_max_size=PLUMBING_BATCH
        ),
        "batched, blobs on disk": StackSpec(
            label="noop-batched-fsblobs",
            mode="batched",
            engine="noop",
            batch_max_size=PLUMBING_BATCH,
            extra_env={"OCR_BLOB_BACKEND": "filesystem", "OCR_BLOB_DIR": str(blob_dir)},
        ),
    }


def _measure(ctx: Ctx, system: System, goal: float, jobs: int | None = None) -> dict[str, Any]:
    cfg = ctx.config
    jobs = jobs or cfg.plumbing_jobs
    with system:
        ctx.watch(system)
        warm_up(system, cfg.warmup_jobs)
        result = measure_closed(system, jobs, cfg.plumbing_concurrency, cfg.drain_timeout_s)
        result["startup_s"] = getattr(system, "startup_s", {})
        print(
            f"[bench]   {system.label}: {result['jobs_per_s']} jobs/s, job p99 "
            f"{result['job_latency_ms']['p99']:.0f} ms, cpu {result['cpu_cores']}",
            flush=True,
        )
        if ctx.profile and result["jobs_per_s"] < goal:
            result["profile"] = ctx.profile_closed(system, jobs // 2, cfg.plumbing_concurrency)
        ctx.remember_memory(system)
    return result


def run(ctx: Ctx) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, spec in _specs(ctx).items():
        goal = CAPACITY_GOAL if name in ("batched", "writer") else 0.0
        # standard mode handles one job at a time by design: a third of the jobs measures
        # its rate just as well and keeps a quick run quick
        jobs = ctx.config.plumbing_jobs // 3 if spec.mode == "standard" else None
        stack = RuntimeStack(ctx.services, spec, ctx.log_dir)
        results[name] = _measure(ctx, stack, goal, jobs)
        results[name]["settings"] = spec.settings()
    results["celery"] = _measure(ctx, CeleryStack(ctx.services, ctx.log_dir), 0.0)
    results["celery"]["settings"] = {
        "design": "seed 003: FastAPI -> Celery (Redis broker and "
        "result backend, prefork pool) -> MariaDB"
    }
    celery_rate = results["celery"]["jobs_per_s"]
    ratios = {
        name: round(ratio(system["jobs_per_s"], celery_rate), 2)
        for name, system in results.items()
        if name != "celery"
    }
    targets = []
    for mode in ("batched", "writer"):
        rate = results[mode]["jobs_per_s"]
        targets.append(
            Target(
                f"plumbing: {mode} jobs/s",
                f">= {CAPACITY_GOAL:.0f}/s",
                rate,
                rate >= CAPACITY_GOAL,
                "jobs/s",
            )
        )
        targets.append(
            Target(
                f"plumbing: {mode} vs Celery",
                f">= {SEVERAL_TIMES:.0f}x",
                ratios[mode],
                ratios[mode] >= SEVERAL_TIMES,
                "x",
            )
        )
    summary: dict[str, Any] = {
        "concurrency": ctx.config.plumbing_concurrency,
        "systems": results,
        "ratio_to_celery": ratios,
        "targets": [target.as_dict() for target in targets],
    }
    if ctx.profile and not all(target.met for target in targets):
        summary["api_database_paths"] = db_paths.run(ctx.services.database_url)
    return summary
