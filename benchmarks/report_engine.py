"""Section 1 of `docs/benchmarks.md`: the engine suite (RapidOCR on ONNX Runtime, CPU)."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.markdown import fmt_cpu, fmt_latency, fmt_num, md_table
from benchmarks.stats import ratio

RAY_ENGINE = "Ray Serve, batched"  # the engine suite's name for its Ray Serve side


def engine_section(suite: dict[str, Any]) -> list[str]:
    img = suite["images"]
    out = [
        "## 1. Engine efficiency (RapidOCR on ONNX Runtime, CPU)",
        "",
        f"{img['count']} rendered documents (`tests/support/documents.py`), mean "
        f"{img['mean_megapixels']} MP, from {img['min_size']} to {img['max_size']} px. "
        "Bare: `RapidOCR()` with its defaults, one image at a time, in its own process. "
        "Worker: the same PNG bytes uploaded over HTTP, through MariaDB and Kafka to "
        "`ocr-runtime worker`, rate = images / (first created_at -> last finished_at). "
        "Each side runs the same number of passes and is read by its fastest, as section 2 "
        "reads every system; the bare library by its fastest run, one before the others and "
        "the rest after them.",
        "",
    ]
    to_ray = suite.get("ratio_to_ray", {})
    rows = [
        [
            "bare library",
            "1.00",
            fmt_num(
                ratio(
                    suite["bare_images_per_s"],
                    suite["worker"].get(RAY_ENGINE, {}).get("images_per_s"),
                ),
                2,
            ),
            fmt_num(suite["bare_images_per_s"], 2),
            "runs before / after: "
            + " / ".join(fmt_num(r["images_per_s"], 2) for r in suite["bare_runs"]),
            " / ".join(fmt_latency(suite["bare_runs"][0]["per_image_ms"])) + " (per image)",
            "-",
        ]
    ]
    for mode, side in suite["worker"].items():
        rows.append(
            [
                mode if mode == RAY_ENGINE else f"worker, {mode}",
                fmt_num(suite["ratio_to_bare"][mode], 2),
                fmt_num(to_ray.get(mode), 2),
                _with_passes(side),
                f"{100 * side.get('same_text_as_bare', math.nan):.1f}%",
                " / ".join(fmt_latency(side["job_latency_ms"])),
                fmt_cpu(side["cpu_cores"]),
            ]
        )
    out += md_table(
        [
            "side",
            "ratio to bare",
            "ratio to Ray Serve",
            "images/s",
            "same text as bare",
            "job latency p50 / p95 / p99 ms",
            "CPU cores by process",
        ],
        rows,
    )
    ray = suite["worker"].get(RAY_ENGINE)
    if suite.get("ray_error"):
        out += [f"Ray Serve: not measured ({suite['ray_error']})", ""]
    if ray is not None:
        out += [
            f"Ray Serve: {ray.get('settings')}; the same engine (`build_engine`, "
            "`OCR_ENGINE=onnx`) and decoding as our worker, behind Ray's HTTP proxy, an "
            "ingress deployment and `@serve.batch` (`benchmarks/ray_baseline/app.py`); "
            f"Ray processes left after its stop: {ray.get('processes_left_after_stop', 'n/a')}.",
            "",
        ]
    return out


def _with_passes(side: dict[str, Any]) -> str:
    """A side's images/s, and every pass's when it ran more than one."""
    rate = fmt_num(side["images_per_s"], 2)
    passes = side.get("passes_jobs_per_s") or []
    if len(passes) < 2:
        return rate
    return f"{rate} (passes {' / '.join(fmt_num(p, 2) for p in passes)})"
