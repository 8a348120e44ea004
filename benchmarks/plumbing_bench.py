"""Suite 2: plumbing capacity with the zero-cost engine, jobs/s end to end and job latency,
for our three modes, for the Celery-on-Redis baseline of seed 003 and for Ray Serve's
`@serve.batch` (`benchmarks/ray_baseline`), in one run."""

from __future__ import annotations

import functools
import math
from typing import Any

from benchmarks import db_paths
from benchmarks.baselines import CeleryStack, RayServeStack
from benchmarks.context import Ctx, Target
from benchmarks.jobs_db import DrainTimeoutError
from benchmarks.procs import ProcessFailedError
from benchmarks.runner import (
    fastest_interleaved,
    fastest_pass,
    interleaved_ratio,
    measure_closed,
    warm_up,
)
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
# Our systems measured beside Celery, passes in turns (`_beside_celery`).
PAIRED = ("batched", "writer")


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
    with system:
        ctx.watch(system)
        warm_up(system, cfg.warmup_jobs)
        result = fastest_plumbing_pass(ctx, system)
        result["startup_s"] = getattr(system, "startup_s", {})
        _print(system, result)
        _profile_below(ctx, system, result, goal)
        ctx.remember_memory(system)
    return result


def _profile_below(ctx: Ctx, system: System, result: dict[str, Any], goal: float) -> None:
    """A py-spy profile of one more pass when the system missed its goal."""
    cfg = ctx.config
    if ctx.profile and result["jobs_per_s"] < goal:
        result["profile"] = ctx.profile_closed(
            system, cfg.plumbing_jobs // 2, cfg.plumbing_concurrency
        )


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


def _celery(ctx: Ctx) -> CeleryStack:
    return CeleryStack(ctx.services, ctx.log_dir, api_processes=PLUMBING_API_PROCESSES)


CELERY_SETTINGS = {
    "design": "seed 003: FastAPI -> Celery (Redis broker and result backend, prefork pool) "
    "-> MariaDB",
    "api_processes": PLUMBING_API_PROCESSES,
}


def _beside_celery(
    ctx: Ctx, celery: CeleryStack, specs: dict[str, StackSpec]
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, float]]:
    """Each of our systems up beside Celery, their passes taking turns: the ratio to Celery
    is read round by round (`interleaved_ratio`), so a quiet minute of the machine cannot
    fall on one side only. Celery idles between its passes on a blocking Redis read."""
    results: dict[str, Any] = {}
    celery_passes: list[dict[str, Any]] = []
    to_celery: dict[str, float] = {}
    for name, spec in specs.items():
        stack = RuntimeStack(ctx.services, spec, ctx.log_dir)
        try:
            with stack:
                ctx.watch(stack)
                warm_up(stack, ctx.config.warmup_jobs)
                measures = {
                    name: functools.partial(plumbing_pass, ctx, stack),
                    "celery": functools.partial(plumbing_pass, ctx, celery),
                }
                pair = fastest_interleaved(measures, ctx.config.plumbing_passes)
                pair[name]["startup_s"] = stack.startup_s
                _profile_below(ctx, stack, pair[name], CAPACITY_GOAL)
                ctx.remember_memory(stack)
        except (ProcessFailedError, DrainTimeoutError) as exc:
            print(f"[bench]   not measured: {exc}", flush=True)
            pair = {name: {"error": str(exc)[:300], "jobs_per_s": math.nan}}
        results[name] = pair[name] | {"settings": spec.settings()}
        if "error" in pair[name]:
            continue
        _print(stack, pair[name])
        if "error" not in pair.get("celery", {"error": ""}):
            celery_passes.append(pair["celery"])
            to_celery[name] = interleaved_ratio(pair[name], pair["celery"])
    return results, celery_passes, to_celery


def _print(system: System, result: dict[str, Any]) -> None:
    print(
        f"[bench]   {system.label}: {result['jobs_per_s']} jobs/s (passes "
        f"{result['passes_jobs_per_s']}), job p99 "
        f"{result['job_latency_ms']['p99']:.0f} ms, cpu {result['cpu_cores']}",
        flush=True,
    )


def _paired_with_celery(ctx: Ctx) -> tuple[dict[str, Any], dict[str, float]]:
    """Batched and writer mode, each beside Celery; Celery's row is its fastest pass of all."""
    specs = {name: spec for name, spec in _specs(ctx).items() if name in PAIRED}
    celery = _celery(ctx)
    try:
        with celery:
            ctx.watch(celery)
            warm_up(celery, ctx.config.warmup_jobs)
            results, celery_passes, to_celery = _beside_celery(ctx, celery, specs)
            ctx.remember_memory(celery)
    except (ProcessFailedError, DrainTimeoutError) as exc:
        print(f"[bench]   celery not measured: {exc}", flush=True)
        error = {"error": str(exc)[:300], "jobs_per_s": math.nan}
        return {**{name: dict(error) for name in specs}, "celery": error}, {}
    if not celery_passes:
        return {**results, "celery": {"error": "no pass beside it", "jobs_per_s": math.nan}}, {}
    every = [rate for one in celery_passes for rate in one["passes_jobs_per_s"]]
    fastest = max(celery_passes, key=lambda one: float(one["jobs_per_s"]))
    results["celery"] = fastest | {"passes_jobs_per_s": every}
    _print(celery, results["celery"])
    return results, to_celery


def run(ctx: Ctx) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, spec in _specs(ctx).items():
        if name in PAIRED:
            continue
        stack = RuntimeStack(ctx.services, spec, ctx.log_dir)
        results[name] = _or_error(ctx, stack, STANDARD_GOAL if name == "standard" else 0.0)
        results[name]["settings"] = spec.settings()
    paired, paired_to_celery = _paired_with_celery(ctx)
    results |= paired
    results["celery"]["settings"] = CELERY_SETTINGS
    results[RAY] = _ray(ctx)
    to_celery = _ratios(results, "celery") | paired_to_celery
    to_ray = _ratios(results, RAY)
    targets = _targets(results, to_celery, to_ray)
    summary: dict[str, Any] = {
        "concurrency": ctx.config.plumbing_concurrency,
        "api_processes": PLUMBING_API_PROCESSES,
        "systems": results,
        "ratio_to_celery": to_celery,
        "ratio_to_celery_fastest": _ratios(results, "celery"),
        "ratio_to_ray": to_ray,
        "targets": [target.as_dict() for target in targets],
    }
    if ctx.profile and not all(target.met for target in targets):
        summary["api_database_paths"] = db_paths.run(ctx.services.database_url)
    return summary


def _ratios(results: dict[str, Any], baseline: str) -> dict[str, float]:
    rate = results[baseline]["jobs_per_s"]
    return {name: round(ratio(system["jobs_per_s"], rate), 2) for name, system in results.items()}
