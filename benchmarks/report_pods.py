"""Section 6 of `docs/benchmarks.md`: the same stacks in pods on the real node and as host
processes, side by side."""

from __future__ import annotations

from typing import Any

from benchmarks.markdown import fmt_latency, fmt_num, md_table

_HEADER = [
    "pass",
    "pods / host",
    "pods / host, database direct",
    "pods / host, fastest passes",
    "host jobs/s",
    "host, database direct, jobs/s",
    "pods jobs/s",
    "each pass, host / pods, jobs/s",
    "host job p50 / p95 / p99 ms",
    "pods job p50 / p95 / p99 ms",
    "same text as host",
    "host CPU ms per job (by process)",
    "pods CPU ms per job (by process)",
    "pods Ready after apply or switch, s",
]


def _cpu_per_job(result: dict[str, Any]) -> str:
    per_job = result.get("cpu_ms_per_job", {})
    total = sum(per_job.values())
    parts = ", ".join(f"{name} {value:.2f}" for name, value in per_job.items() if value >= 0.01)
    return f"{total:.2f} ({parts})"


def _passes(result: dict[str, Any]) -> str:
    """Every pass of one side, or its only one."""
    passes = result.get("passes_jobs_per_s") or [result.get("jobs_per_s")]
    return ", ".join(fmt_num(value, 1) for value in passes)


def _row(name: str, side: dict[str, Any]) -> list[str]:
    host, pods = side["host"], side["pods"]
    direct = side.get("host_direct", {})
    same = side.get("same_text_as_host")
    return [
        name,
        fmt_num(side["pods_to_host"], 2),
        fmt_num(side.get("pods_to_host_direct"), 2),
        fmt_num(side.get("fastest_pods_to_host"), 2),
        fmt_num(host["jobs_per_s"], 1),
        fmt_num(direct.get("jobs_per_s"), 1),
        fmt_num(pods["jobs_per_s"], 1),
        f"{_passes(host)} / {_passes(pods)}",
        " / ".join(fmt_latency(host.get("job_latency_ms", {}))),
        " / ".join(fmt_latency(pods.get("job_latency_ms", {}))),
        "-" if same is None else f"{100 * same:.1f}%",
        _cpu_per_job(host),
        _cpu_per_job(pods),
        fmt_num(pods.get("ready_s"), 1),
    ]


def pods_section(suite: dict[str, Any]) -> list[str]:
    passes = suite["passes"]
    rows = [_row(name, side) for name, side in passes.items() if "pods_to_host" in side]
    failed = [f"- {name}: `{side['error']}`" for name, side in passes.items() if "error" in side]
    measured = [side["pods"]["settings"] for side in passes.values() if "pods" in side]
    settings: dict[str, Any] = measured[0] if measured else {}
    return [
        "## 6. Pods on the real node",
        "",
        "The stack as the operator deploys it: an `OCRServing` (operator as a host process, "
        "stack defaults as `examples/local/operator-values.yaml`) whose pods run on the "
        "local cluster's real node (kubelet, containerd, runc) from the images `make images` "
        "built; the load generator posts to the API Service's cluster IP, through "
        "kube-proxy's rules and the node's bridge. One stack per engine, moved from one mode "
        "to the next by a patch of `spec.architecture.mode`. Pods cannot reach services bound "
        "to this host's loopback: they reach Kafka and MariaDB through socat forwarders "
        "(`forward kafka`, `forward mariadb`, counted in their CPU), an artefact of this "
        "machine, not of pods. So the pods run beside the same stack as host processes "
        "(same settings, same API key) whose database connections pass the same forwarder: "
        "pods / host is what running in pods costs, and the target. For the plumbing passes "
        "the host stack also runs with its database direct, as section 2 measures it. The "
        "sides take turns, a pass of each per round, so that a slow minute of the machine "
        "falls on both; each side runs the same number of passes, and pods / host is the median "
        "of the rounds' ratios (each round's pods pass over its host pass), the jobs/s "
        "columns each side's fastest pass. Pods' "
        f"settings: {settings}.",
        "",
        *md_table(_HEADER, rows),
        *([*failed, ""] if failed else []),
    ]
