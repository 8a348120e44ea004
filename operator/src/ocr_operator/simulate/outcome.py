"""Figures of a simulated day: job latency per minute (FIFO), per-hour table, comparison."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from ocr_operator.model.enums import Mode
from ocr_operator.simulate.drive import Run
from ocr_operator.simulate.stack import STEP_S

LATENCY_TARGET_S = 60.0  # p95 job latency objective (submit to result stored)
OSCILLATION_S = 3600.0  # back to the mode it left within this long counts as oscillation
_STEPS_PER_MIN = int(60 / STEP_S)


def minute_p95(run: Run) -> list[float]:
    """p95 latency of the jobs submitted in each minute: a job submitted at step i is done
    when the cumulative completions reach the cumulative arrivals at i (first in, first out),
    plus its own service time."""
    done_at: list[float] = []
    j = 0
    last = len(run.completed) - 1
    for i, arrived in enumerate(run.arrived):
        j = max(j, i)
        while j < last and run.completed[j] + 1e-6 < arrived:
            j += 1
        done_at.append(_crossing(run, i, j, arrived) + run.service[i])
    out = []
    for start in range(0, len(done_at), _STEPS_PER_MIN):
        window = range(start, min(start + _STEPS_PER_MIN, len(done_at)))
        weights = [(done_at[i], _arrivals(run, i)) for i in window]
        out.append(_weighted_p95(weights))
    return out


def _crossing(run: Run, i: int, j: int, arrived: float) -> float:
    """Seconds from step i until the completions reach `arrived`, interpolated within the
    step in which they do (the steps are a fluid model's, not job boundaries)."""
    if j <= i:
        return 0.0
    before, after = run.completed[j - 1], run.completed[j]
    share = (arrived - before) / (after - before) if after > before else 1.0
    return max(0.0, (j - 1 - i + min(1.0, max(0.0, share))) * STEP_S)


def _arrivals(run: Run, i: int) -> float:
    return run.arrived[i] - (run.arrived[i - 1] if i else 0.0)


def _weighted_p95(pairs: list[tuple[float, float]]) -> float:
    total = sum(w for _, w in pairs)
    if total <= 0:
        return 0.0
    seen = 0.0
    for value, weight in sorted(pairs):
        seen += weight
        if seen >= 0.95 * total:
            return value
    return sorted(pairs)[-1][0]


def minute_modes(run: Run) -> list[Mode]:
    return [run.modes[min(i + _STEPS_PER_MIN - 1, len(run.modes) - 1)]
            for i in range(0, len(run.modes), _STEPS_PER_MIN)]  # fmt: skip


@dataclass(frozen=True)
class Summary:
    name: str
    within_target: float  # share of minutes whose p95 met the target
    worst_p95: float
    in_oracle_mode: float  # share of minutes in the oracle's mode
    transitions: int
    oscillations: int
    worker_hours: float
    writer_hours: float


def oscillations(run: Run) -> int:
    """Transitions back to the mode left less than `OSCILLATION_S` before."""
    changes = [(i * STEP_S, a, b) for i, (a, b) in enumerate(pairwise(run.modes)) if a is not b]
    return sum(
        1
        for (t1, a1, b1), (t2, a2, b2) in pairwise(changes)
        if b2 is a1 and a2 is b1 and t2 - t1 < OSCILLATION_S
    )


def summarise(run: Run, oracle: list[Mode]) -> Summary:
    p95 = minute_p95(run)
    modes = minute_modes(run)
    agree = sum(1 for a, b in zip(modes, oracle, strict=True) if a is b) / len(oracle)
    changes = sum(1 for a, b in pairwise(run.modes) if a is not b)
    return Summary(
        name=run.name,
        within_target=sum(1 for v in p95 if v <= LATENCY_TARGET_S) / len(p95),
        worst_p95=max(p95),
        in_oracle_mode=agree,
        transitions=changes,
        oscillations=oscillations(run),
        worker_hours=run.worker_seconds / 3600,
        writer_hours=run.writer_seconds / 3600,
    )


def hourly(run: Run, oracle: list[Mode]) -> list[tuple[int, str, str, float, float, float]]:
    """Per hour: (hour, main mode, oracle's main mode, mean lag, worst minute p95,
    worker-seconds of GPU workers and writers)."""
    p95 = minute_p95(run)
    modes = minute_modes(run)
    steps = int(3600 / STEP_S)
    rows = []
    for hour in range(24):
        minutes = range(hour * 60, hour * 60 + 60)
        main = Counter(modes[m] for m in minutes).most_common(1)[0][0]
        best = Counter(oracle[m] for m in minutes).most_common(1)[0][0]
        lag = sum(run.lag[hour * steps : (hour + 1) * steps]) / steps
        pods = run.pods[hour * steps : (hour + 1) * steps]
        cost = sum(w + r for w, r in pods) * STEP_S
        rows.append((hour, main.value, best.value, lag, max(p95[m] for m in minutes), cost))
    return rows
