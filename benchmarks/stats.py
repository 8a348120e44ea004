"""Small statistics helpers shared by the suites and the load generator."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for an empty sequence."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds of a list of durations in seconds."""
    if not seconds:
        return {
            "count": 0,
            "p50": math.nan,
            "p95": math.nan,
            "p99": math.nan,
            "max": math.nan,
            "mean": math.nan,
        }
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 50) * 1000.0,
        "p95": percentile(ordered, 95) * 1000.0,
        "p99": percentile(ordered, 99) * 1000.0,
        "max": ordered[-1] * 1000.0,
        "mean": sum(ordered) / len(ordered) * 1000.0,
    }


def ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0 or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median over rounds of one side's pass divided by the other's pass of the same round.
    Two sides whose passes took turns shared each round's minute of the machine; a ratio of
    their fastest passes instead compares whichever minutes were fastest for each, and one
    outlying pass (a quiet minute on one side only) decides it."""
    rounds = [ratio(a, b) for a, b in zip(numerators, denominators, strict=True)]
    rounds = [value for value in rounds if not math.isnan(value)]
    if not rounds:
        return math.nan
    ordered = sorted(rounds)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
