"""Markdown pieces of the benchmark summary: numbers, tables, CPU and latency cells."""

from __future__ import annotations

import math
from typing import Any


def fmt_num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def fmt_cpu(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items() if value >= 0.01)


def fmt_latency(lat: dict[str, Any]) -> list[str]:
    return [fmt_num(lat.get("p50")), fmt_num(lat.get("p95")), fmt_num(lat.get("p99"))]
