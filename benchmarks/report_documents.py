"""Section 5 of `docs/benchmarks.md`: the documents suite (a multi-page PDF)."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.markdown import fmt_cpu, fmt_latency, fmt_num, md_table


def documents_section(suite: dict[str, Any]) -> list[str]:
    pdf = suite["pdf"]
    bare = suite["bare_runs"]
    rows = [
        [
            "bare library",
            "1.00",
            fmt_num(suite["bare_pages_per_s"], 2),
            "-",
            "runs before / after: " + " / ".join(fmt_num(r["images_per_s"], 2) for r in bare),
            "-",
        ],
    ]
    for mode, side in suite["worker"].items():
        rows.append(
            [
                f"worker, {mode}",
                fmt_num(suite["ratio_to_bare"][mode], 2),
                fmt_num(side["pages_per_s"], 2),
                f"{100 * side.get('same_text_as_bare', math.nan):.1f}%",
                " / ".join(fmt_latency(side["job_latency_ms"])) + f" (pages per result: "
                f"{sorted(set(side['pages_per_result']))})",
                fmt_cpu(side["cpu_cores"]),
            ]
        )
    header = [
        "side",
        "ratio to bare",
        "pages/s",
        "same text as bare",
        "job latency p50 / p95 / p99 ms",
        "CPU cores by process",
    ]
    return [
        "## 5. Documents (a multi-page PDF, RapidOCR on ONNX Runtime, CPU)",
        "",
        f"One {pdf['pages']}-page PDF of rendered documents ({pdf['bytes']:,} bytes, pages "
        f"drawn at {pdf['dpi']} DPI), uploaded {pdf['copies']} times at once; each upload is "
        "one job whose pages the worker draws with PDFium and recognises. Bare: `RapidOCR()` "
        "with its defaults, each page drawn at the same DPI and read in turn (drawing "
        "included), in its own process. pages/s = pages of all uploads / (first created_at "
        "-> last finished_at).",
        "",
        *md_table(header, rows),
    ]
