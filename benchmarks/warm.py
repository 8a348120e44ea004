"""The broker's warm-up, before any suite is measured.

Kafka is a JVM. Started fresh (as `make bench` on a fresh clone starts it), it runs its hot
paths interpreted and compiles them over the first minutes of load, its compiler threads on
the same two cores as everything measured. On a writer stack with the zero-cost engine, the
broker spent 0.44 to 0.65 ms of CPU per job in the first passes after a restart and 0.19 to
0.26 once some 30,000 jobs had passed, and suites measured in those minutes read writer mode
at 750 jobs/s where the warm broker carried 1,100. A broker that users run has been up for
days: the suites measure that one, and the report shows the curve of this warm-up.
"""

from __future__ import annotations

from typing import Any

from benchmarks.context import Ctx
from benchmarks.plumbing_bench import PLUMBING_API_PROCESSES, PLUMBING_BATCH
from benchmarks.runner import measure_closed, warm_up
from benchmarks.stack import RuntimeStack, StackSpec

# The suites that send jobs through Kafka; the operator suite does not.
USES_BROKER = frozenset({"engine", "plumbing", "api", "documents", "pods"})
# Every Kafka path the suites use: job and result topics, long-polled fetches, producer
# batches and offset commits, from two API processes as in the plumbing suite.
_SPEC = StackSpec(
    label="broker-warmup",
    mode="writer",
    engine="noop",
    batch_max_size=PLUMBING_BATCH,
    api_processes=PLUMBING_API_PROCESSES,
)
PASS_JOBS = 3000


def run(ctx: Ctx, jobs: int, pass_jobs: int = PASS_JOBS) -> dict[str, Any]:
    """Closed-loop passes of `pass_jobs` until `jobs` have passed; each pass's jobs/s and
    Kafka CPU per job."""
    cfg = ctx.config
    passes: list[dict[str, float]] = []
    with RuntimeStack(ctx.services, _SPEC, ctx.log_dir) as stack:
        warm_up(stack, cfg.warmup_jobs)
        for index in range(max(1, -(-jobs // pass_jobs))):
            result = measure_closed(stack, pass_jobs, cfg.plumbing_concurrency,
                                    cfg.drain_timeout_s)  # fmt: skip
            kafka = result["cpu_ms_per_job"].get("kafka", float("nan"))
            passes.append({"jobs_per_s": result["jobs_per_s"], "kafka_cpu_ms_per_job": kafka})
            print(f"[bench]   broker warm-up pass {index + 1}: {result['jobs_per_s']} jobs/s, "
                  f"Kafka {kafka} ms of CPU per job", flush=True)  # fmt: skip
    return {"pass_jobs": pass_jobs, "settings": _SPEC.settings(), "passes": passes}


def summary_line(warmup: dict[str, Any] | None) -> str:
    """The machine table's line about the warm-up."""
    if not warmup:
        return "none (no suite of this run sends jobs through Kafka, or `--no-broker-warmup`)"
    if "error" in warmup:
        return f"failed: {warmup['error']}"
    passes = warmup["passes"]
    kafka = [f"{p['kafka_cpu_ms_per_job']:.2f}" for p in passes]
    return (
        f"{len(passes)} passes of {warmup['pass_jobs']:,} jobs through a writer stack (noop "
        f"engine) before the suites; Kafka's CPU per job, pass by pass: {', '.join(kafka)} ms"
    )
