"""Suite 3: latency of `POST /v1/jobs` at fixed arrival rates (open loop) from a separate
load-generating process, with a batched noop worker draining the queue behind the API."""

from __future__ import annotations

from typing import Any

from benchmarks import profiling
from benchmarks.context import Ctx, Target
from benchmarks.procs import CpuWindow
from benchmarks.runner import infra_pids, run_loadgen, warm_up
from benchmarks.stack import RuntimeStack, StackSpec

GOAL_RATE = 500
GOAL_P99_MS = 50.0


def _step(ctx: Ctx, stack: RuntimeStack, rate: int) -> dict[str, Any]:
    seconds = ctx.config.api_seconds
    since = stack.cutoff()
    window = CpuWindow({**stack.python_pids(), **infra_pids()})
    window.begin()
    report = run_loadgen(
        [
            "open",
            "--url",
            f"{stack.api_url}/v1/jobs",
            "--rate",
            str(rate),
            "--duration",
            str(seconds),
        ],
        timeout=seconds * 10 + 60,
    )
    cpu = window.end()
    accepted = report["statuses"].get("202", 0)
    # let the worker drain before the next step, so steps do not overlap
    stack.table.wait_finished(accepted, since, ctx.config.drain_timeout_s)
    report["cpu_cores"] = {**cpu, "loadgen": report["client_cpu_cores"]}
    if report["requests"]:
        # the API's CPU time per request: comparable across runs whatever the machine's load
        report["api_cpu_ms_per_request"] = round(
            cpu.get("api", 0.0) * report["wall_s"] / report["requests"] * 1000, 3
        )
    print(
        f"[bench]   API at {rate}/s: p99 {report['latency_ms']['p99']:.1f} ms, "
        f"{report['statuses']}",
        flush=True,
    )
    return report


def _profile_api(ctx: Ctx, stack: RuntimeStack, rate: int) -> dict[str, Any]:
    out_dir = ctx.results_dir / "profiles" / "api-latency"
    recording = profiling.start_recording(
        "api", stack.processes["api"].pid, ctx.config.profile_seconds, out_dir
    )
    report = run_loadgen(
        [
            "open",
            "--url",
            f"{stack.api_url}/v1/jobs",
            "--rate",
            str(rate),
            "--duration",
            str(ctx.config.profile_seconds),
        ],
        timeout=ctx.config.profile_seconds * 10 + 60,
    )
    return {
        "rate": rate,
        "latency_ms_while_profiled": report["latency_ms"],
        "processes": profiling.finish([recording]),
    }


def run(ctx: Ctx) -> dict[str, Any]:
    spec = StackSpec(label="api-latency", mode="batched", engine="noop", batch_max_size=64)
    steps: dict[str, Any] = {}
    with RuntimeStack(ctx.services, spec, ctx.log_dir) as stack:
        ctx.watch(stack)
        warm_up(stack, ctx.config.warmup_jobs)
        for rate in ctx.config.api_rates:
            steps[str(rate)] = _step(ctx, stack, rate)
        at_goal = steps.get(str(GOAL_RATE), {}).get("latency_ms", {}).get("p99", float("nan"))
        met = at_goal < GOAL_P99_MS
        profile = _profile_api(ctx, stack, GOAL_RATE) if ctx.profile and not met else None
        ctx.remember_memory(stack)
    target = Target(f"API: p99 at {GOAL_RATE}/s", f"< {GOAL_P99_MS:.0f} ms", at_goal, met, "ms")
    result: dict[str, Any] = {
        "settings": spec.settings(),
        "rates": steps,
        "targets": [target.as_dict()],
    }
    if profile is not None:
        result["profile"] = profile
    return result
