"""The GPU section of `docs/benchmarks.md`: rendered from `docs/benchmarks-gpu.json`, the
last run of `python -m benchmarks.gpu_bench` on a GPU machine (this machine may have none),
with its date and machine, so a CPU-only `make bench` keeps the GPU figures and says when
they were taken."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.markdown import fmt_latency, fmt_num, md_table
from benchmarks.stats import ratio

GPU_RESULTS = Path("docs/benchmarks-gpu.json")
BATCHED_OVER_STANDARD_GOAL = 3.0  # Triton's dynamic batching on an OCR recogniser: 3.3x
MODES = ("bare", "standard", "batched")


def load(path: Path = GPU_RESULTS) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def targets(gpu: dict[str, Any] | None) -> list[list[str]]:
    """Rows of the targets table: measured where the GPU run measured them."""
    if gpu is None:
        return [["engine: GPU rows", "-", "not measured: no GPU run recorded", "**not measured**"]]
    speedup = ratio(gpu["batched"]["images_per_s"], gpu["standard"]["images_per_s"])
    met = speedup >= BATCHED_OVER_STANDARD_GOAL
    rows = [
        [
            "engine: batched vs standard (GPU)",
            f">= {BATCHED_OVER_STANDARD_GOAL}x",
            f"{fmt_num(speedup, 2)} x ({gpu['measured_on']})",
            "met" if met else "**missed**",
        ]
    ]
    for name, reason in gpu.get("unmeasured", {}).items():
        rows.append([f"engine: {name} (GPU)", "-", reason[:160], "**not measured**"])
    return rows


def section(gpu: dict[str, Any] | None) -> list[str]:
    if gpu is None:
        return []
    img = gpu["images"]
    out = [
        "## 1b. Engine on a GPU (`python -m benchmarks.gpu_bench`)",
        "",
        f"Measured on {gpu['measured_on']}: {gpu['machine']}. `{gpu['command']}`: "
        f"{img['count']} rendered documents, mean {img['mean_megapixels']} MP. Our modes run "
        "the all-in-one server (API, SQLite, in-process queue, worker: the product's code "
        "path without Kafka and MariaDB, which that machine lacks), each job through "
        "`POST /v1/ocr` with 32 in flight; GPU utilisation sampled from NVML every 0.1 s.",
        "",
    ]
    rows = []
    bare_rate = gpu.get("bare", {}).get("images_per_s")
    for name in MODES:
        side = gpu.get(name)
        if side is None:
            rows.append([name, "not measured", "-", "-", "-"])
            continue
        latency = side.get("job_latency_ms") or side["per_image_ms"]
        util = side["gpu"]
        rows.append(
            [
                name,
                fmt_num(side["images_per_s"], 2),
                fmt_num(ratio(side["images_per_s"], bare_rate), 2) if bare_rate else "-",
                " / ".join(fmt_latency(latency)),
                f"{util['mean_util_pct']} / {util['max_util_pct']} % ; "
                f"{util['max_memory_mib']:.0f} MiB",
            ]
        )
    headers = ["pass", "images/s", "vs bare", "latency p50/p95/p99 ms", "GPU util mean/max"]
    finding = [gpu["finding"], ""] if gpu.get("finding") else []
    return [*out, *md_table(headers, rows), "", *finding]
