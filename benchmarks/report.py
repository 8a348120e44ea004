"""Turns a run's JSON results into `docs/benchmarks.md`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks import report_gpu, warm
from benchmarks.markdown import fmt_cpu, fmt_latency, fmt_num, md_table
from benchmarks.report_documents import documents_section
from benchmarks.report_engine import engine_section
from benchmarks.report_pods import pods_section

MIB = 1024 * 1024


def _machine(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    rows = [
        ["CPU", f"{m['cpu']} ({m['cores']} cores)"],
        ["Memory", f"{m['memory_gib']} GiB"],
        ["Kernel / Python", f"{m['kernel']} / {m['python']}"],
        ["Load average at start", " / ".join(str(v) for v in m["load_average_at_start"])],
        ["Broker warm-up", warm.summary_line(results.get("broker_warmup"))],
        ["GPU", m["gpu"]],
        ["Commit", m["git_commit"]],
        ["Packages", ", ".join(f"{k} {v}" for k, v in m["packages"].items())],
    ]
    return ["## Machine", "", *md_table(["", ""], rows)]


def _targets(results: dict[str, Any], gpu: dict[str, Any] | None) -> list[str]:
    rows = []
    for suite in results["suites"].values():
        for t in suite.get("targets", []):
            verdict = "met" if t["met"] else "**missed**"
            rows.append([t["name"], t["goal"], f"{fmt_num(t['value'], 2)} {t['unit']}", verdict])
    if results["machine"].get("gpu", "").startswith("not measured"):
        rows += report_gpu.targets(gpu)
    for name, suite in results["suites"].items():
        if "error" in suite or suite.get("status") == "not run":
            rows.append(
                [name, "-", suite.get("reason", suite.get("error", ""))[:160], "**not measured**"]
            )
    return ["## Targets", "", *md_table(["target", "goal", "this run", "verdict"], rows)]


def _ceiling(ms_per_job: dict[str, float], cores: int) -> float:
    """Jobs/s the machine's cores could carry if every process had them to itself: cores
    divided by the CPU time one job costs across all processes (load generator included)."""
    total = sum(ms_per_job.values())
    return cores * 1000.0 / total if total > 0 else math.nan


def _plumbing(suite: dict[str, Any], cores: int) -> list[str]:
    out = [
        "## 2. Plumbing capacity (noop engine)",
        "",
        "Closed loop from a separate load-generator process; jobs/s = jobs / (first "
        "created_at -> last finished_at) read from the database; latency is created_at -> "
        "finished_at per job. Each system runs several passes; its row is the fastest (a "
        "neighbour's burst only slows a pass down), every pass's jobs/s beside it. Batched "
        "and writer mode each run beside Celery, their passes and Celery's taking turns, and "
        "their ratio to Celery is the median of the rounds' ratios: the machine's speed "
        "drifts over minutes, and so both sides of a round share its minute. Celery's row "
        "is its fastest pass of both pairings. "
        "CPU ceiling = cores / (CPU time of one job summed over every "
        "process, load generator included): the rate this machine could carry with no other "
        "tenant, a figure that does not move with the machine's load.",
        "",
    ]
    rows = []
    failed = {name: sys["error"] for name, sys in suite["systems"].items() if "error" in sys}
    systems = {name: sys for name, sys in suite["systems"].items() if name not in failed}
    for name, sys in systems.items():
        rows.append(
            [
                name,
                fmt_num(suite.get("ratio_to_ray", {}).get(name), 2),
                fmt_num(suite["ratio_to_celery"].get(name, 1.0), 2),
                fmt_num(sys["jobs_per_s"]),
                " / ".join(fmt_num(rate) for rate in sys.get("passes_jobs_per_s", [])),
                fmt_num(sys["submit"]["achieved_rps"]),
                *fmt_latency(sys["job_latency_ms"]),
                fmt_num(sys["submit"]["latency_ms"]["p99"]),
                fmt_cpu(sys["cpu_cores"]),
                fmt_cpu(sys.get("cpu_ms_per_job", {})),
                fmt_num(_ceiling(sys.get("cpu_ms_per_job", {}), cores), 0),
            ]
        )
    out += md_table(
        [
            "system",
            "ratio to Ray Serve",
            "ratio to Celery",
            "jobs/s end to end",
            "each pass, jobs/s",
            "HTTP submits/s",
            "job p50 ms",
            "job p95 ms",
            "job p99 ms",
            "HTTP p99 ms",
            "CPU cores by process",
            "CPU ms per job by process",
            "CPU ceiling, jobs/s",
        ],
        rows,
    )
    concurrency = suite.get("concurrency", "?")
    counts = ", ".join(f"{name} {sys['jobs']}" for name, sys in systems.items())
    fronts = suite.get("api_processes", 1)
    out.append(
        f"Jobs per pass: {counts}; "
        f"{concurrency} requests in flight, spread over {fronts} HTTP front process(es) of "
        "every system (our API processes, as a default OCRServing's API pods; uvicorn workers "
        "of Celery's FastAPI; Ray Serve ingress replicas). Settings: "
        + "; ".join(f"{name}: {sys.get('settings')}" for name, sys in systems.items())
    )
    out.append("")
    fastest = suite.get("ratio_to_celery_fastest", {})
    if any(name in fastest for name in ("batched", "writer")):
        read = ", ".join(
            f"{n} {fmt_num(fastest[n], 2)}" for n in ("batched", "writer") if n in fastest
        )
        out += [
            f"Ratio to Celery of the fastest passes alone (not the target's reading): {read}.",
            "",
        ]
    out += [
        f"{name}: {sum(sys['refused'].values())} submissions refused ({sys['refused']}); "
        "jobs/s counts the accepted ones.\n"
        for name, sys in systems.items()
        if sys.get("refused")
    ]
    out += [f"{name}: not measured ({error})\n" for name, error in failed.items()]
    paths = suite.get("api_database_paths")
    if paths:
        out += [
            "The API's database work per upload (blob chunk + job row, the runtime's tables "
            "and engine settings, 32 in flight from one uvloop process), in the ways it has "
            "been and could be written (`benchmarks/db_paths.py`):",
            "",
        ]
        rows = [
            [name, fmt_num(v["uploads_per_s"]), fmt_num(v["cpu_ms_per_upload"], 2)]
            for name, v in paths.items()
        ]
        out += md_table(["variant", "uploads/s", "CPU ms per upload"], rows)
    return out


def _api(suite: dict[str, Any]) -> list[str]:
    out = [
        "## 3. API latency, open loop",
        "",
        "Requests are sent at a fixed rate whatever the server does; latency counts from "
        "the moment each request was due (no coordinated omission). With two API processes "
        "the load generator sends request i to process i mod 2, as a Service spreads "
        "requests over two API pods.",
        "",
    ]
    runs = suite.get("processes") or {"1": {"rates": suite["rates"]}}
    rows = [
        _api_row(processes, rate, step)
        for processes, run in runs.items()
        for rate, step in run["rates"].items()
    ]
    out += md_table(
        [
            "API processes",
            "rate/s",
            "achieved/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "non-202",
            "client lag p99 ms",
            "API CPU ms per request",
            "CPU cores by process",
        ],
        rows,
    )
    return out


def _api_row(processes: str, rate: str, step: dict[str, Any]) -> list[str]:
    lag = step.get("client_lag_ms", {})
    rejected = sum(n for code, n in step["statuses"].items() if code != "202")
    return [
        processes,
        rate,
        fmt_num(step["achieved_rps"]),
        *fmt_latency(step["latency_ms"]),
        fmt_num(step["latency_ms"]["max"]),
        str(rejected),
        fmt_num(lag.get("p99")),
        fmt_num(step.get("api_cpu_ms_per_request"), 2),
        fmt_cpu(step["cpu_cores"]),
    ]


def _operator(suite: dict[str, Any]) -> list[str]:
    out = ["## 4. Operator", ""]
    if suite.get("status") == "not run" or "error" in suite:
        return [*out, f"Not measured: {suite.get('reason', suite.get('error'))}", ""]
    measurements = suite.get("measurements", {})
    rows = [
        [name, fmt_num(value.get("seconds"), 2), str(value.get("detail", ""))]
        for name, value in measurements.items()
    ]
    out += md_table(["measurement", "seconds", "detail"], rows)
    for name, value in measurements.items():
        profile = value.get("profile") or {}
        if profile.get("samples"):
            shares = "; ".join(f"{f} {pct}%" for f, pct in profile["ours_inclusive_pct"])
            packages = "; ".join(f"{f} {pct}%" for f, pct in profile["self_by_package_pct"])
            seconds = profile.get("pass_seconds")
            second = "" if seconds is None else f", all Ready in {fmt_num(seconds, 1)} s under it"
            out += [
                f'The operator under py-spy during a second pass of "{name}" '
                f"({profile['samples']} samples{second}; the measured pass above ran without "
                f"the sampler): its own functions (inclusive) {shares}. By package (self): "
                f"{packages}.",
                "",
            ]
    return out


def _memory(results: dict[str, Any]) -> list[str]:
    rows = [[name, fmt_num(rss / MIB)] for name, rss in sorted(results.get("memory", {}).items())]
    return [
        "## 7. Memory (peak resident set size, process and its children)",
        "",
        "`engine-*/worker-0`: worker with the ONNX models loaded (peak while inferring; "
        "`(ready, idle)`: right after readiness); "
        "`noop-*`: zero-cost engine; `api-latency/*`: the open-loop API test; "
        "`celery/worker`: Celery's prefork parent and its children; `bare-engine`: "
        "`RapidOCR()` alone after the run; operator: after reconciling the resources.",
        "",
        *md_table(["process", "MiB"], rows),
    ]


def _profiles(results: dict[str, Any]) -> list[str]:
    out = []
    for suite_name, suite in results["suites"].items():
        for label, profile, cpu in _find_profiles(suite):
            out += [f"### {suite_name}: {label}", ""]
            if cpu:
                out.append(f"CPU cores used during the measured pass: {fmt_cpu(cpu)}.")
                out.append("")
            for proc, summary in profile.get("processes", {}).items():
                own = "; ".join(f"{n} {p}%" for n, p in summary.get("self_pct", [])[:6])
                incl = "; ".join(f"{n} {p}%" for n, p in summary.get("ours_inclusive_pct", [])[:10])
                by_pkg = "; ".join(
                    f"{n} {p}%" for n, p in summary.get("self_by_package_pct", [])[:6]
                )
                in_pkg = "; ".join(
                    f"{n} {p}%" for n, p in summary.get("inclusive_by_package_pct", [])[:8]
                )
                out.append(f"- `{proc}` ({summary.get('samples', 0)} samples)")
                out.append(f"  - self time by package: {by_pkg}")
                out.append(f"  - time under each package (inclusive): {in_pkg}")
                out.append(f"  - self time by function: {own}")
                out.append(f"  - our functions, inclusive: {incl}")
            out.append("")
    title = "## Profiles of missed targets (py-spy: share of samples, self and inclusive)"
    return [title, "", *out] if out else []


def _find_profiles(suite: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, float]]]:
    found = []
    if "profile" in suite:
        rate = str(suite["profile"].get("rate", ""))
        cpu = suite.get("rates", {}).get(rate, {}).get("cpu_cores", {})
        found.append((f"api at {rate}/s", suite["profile"], cpu))
    for group in ("worker", "systems"):
        for name, side in suite.get(group, {}).items():
            if isinstance(side, dict) and "profile" in side:
                found.append((name, side["profile"], side.get("cpu_cores", {})))
    return found


def render(results: dict[str, Any], notes: str = "", gpu: dict[str, Any] | None = None) -> str:
    """`gpu`: the last GPU machine's run (`report_gpu`), shown when this run had no GPU."""
    suites = results["suites"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks --{results['config']['name']}` "
        f"(`make bench`) on {results['machine']['date_utc']}, in "
        f"{results['duration_s'] / 60:.1f} min. Raw results: `bench-results/` (JSON, "
        "logs, profiles). Every comparison ran side by side in this one run; read the "
        "ratios rather than the absolute numbers, which move with the machine's load.",
        "",
        "Run it: `make bench` (quick, about twenty minutes on 2 cores) or `make bench-full`; "
        "`python -m benchmarks --help` lists the options (`--only "
        "engine,plumbing,api,operator,documents,pods`, `--device gpu`, `--no-profile`, "
        "`--no-broker-warmup`). Kafka is warmed first (its JIT compiles its hot paths over "
        "the first minutes of load; `benchmarks/warm.py`). Each suite starts its own "
        "processes on a fresh database and fresh topics, and a target it misses is re-run "
        "under py-spy.",
        "",
    ]
    lines += _machine(results) + _targets(results, gpu)
    cores = int(results["machine"].get("cores", 0))
    renderers = {
        "engine": engine_section,
        "plumbing": lambda suite: _plumbing(suite, cores),
        "api": _api,
        "operator": _operator,
        "documents": documents_section,
        "pods": pods_section,
    }
    for name, renderer in renderers.items():
        suite = suites.get(name)
        if suite is None:
            continue
        if "error" in suite and name != "operator":
            lines += [f"## {name}", "", f"Failed: `{suite['error']}`", ""]
            continue
        lines += renderer(suite)
        if name == "engine" and results["machine"].get("gpu", "").startswith("not measured"):
            lines += report_gpu.section(gpu)
    lines += _memory(results) + _profiles(results)
    if notes:
        lines += ["## Analysis", "", notes.strip(), ""]
    return "\n".join(lines)


def write(results: dict[str, Any], path: Path, notes_path: Path | None = None) -> None:
    notes = notes_path.read_text() if notes_path is not None and notes_path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results, notes, report_gpu.load()))
