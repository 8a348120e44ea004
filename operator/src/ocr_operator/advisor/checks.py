"""The conditions the rules are made of, each one comparison of one signal (pure).

A rule holds when all its checks hold. Each check says what it compared (value, threshold,
baseline) in words a person can read in `kubectl describe`, and the window tracks how long
each check has held, so a recommendation names every signal with the time it held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from ocr_operator.advisor.evidence import Derived, Evidence, Signal
from ocr_operator.model.advisor import AdvisorThresholds


class Check(StrEnum):
    GPU_SATURATED = "gpuSaturated"
    GPU_LOW = "gpuLow"
    GPU_IDLE = "gpuIdle"
    BEHIND = "behind"
    CAUGHT_UP = "caughtUp"
    DRAINED = "drained"
    BACKLOG_GROWING = "backlogGrowing"
    BACKLOG_FLAT = "backlogFlat"
    DB_WRITE_SLOW = "dbWriteSlow"
    DB_WRITE_NORMAL = "dbWriteNormal"
    API_SLOW = "apiSlow"
    SYNC_TIMEOUTS = "syncTimeouts"


@dataclass(frozen=True)
class Finding:
    """One check on one evaluation's evidence."""

    check: Check
    holds: bool
    signal: str  # the Signal or Derived key it reads
    value: float | None
    threshold: float
    text: str  # e.g. "timeToDrainSeconds 45.0 >= 30"
    baseline: float | None = None


_Eval = Callable[[Evidence, AdvisorThresholds], Finding]


def _cmp(
    check: Check, signal: str, value: float | None, op: str, threshold: float, *, unit: str = ""
) -> Finding:
    if value is None:
        return Finding(check, False, signal, None, threshold, f"{signal} missing")
    holds = {
        ">=": value >= threshold,
        ">": value > threshold,
        "<": value < threshold,
        "<=": value <= threshold,
    }[op]
    text = f"{signal} {value:.3g}{unit} {op if holds else _NOT[op]} {threshold:g}{unit}"
    return Finding(check, holds, signal, value, threshold, text)


_NOT = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}


def _gpu(check: Check, op: str, pick: Callable[[AdvisorThresholds], float]) -> _Eval:
    def run(e: Evidence, t: AdvisorThresholds) -> Finding:
        return _cmp(check, Signal.GPU_UTILIZATION.value, e.gpu_utilization, op, pick(t), unit="%")

    return run


def _drain(check: Check, op: str, pick: Callable[[AdvisorThresholds], float]) -> _Eval:
    def run(e: Evidence, t: AdvisorThresholds) -> Finding:
        return _cmp(check, Derived.TIME_TO_DRAIN.value, e.time_to_drain, op, pick(t), unit="s")

    return run


def _growth(check: Check, op: str, pick: Callable[[AdvisorThresholds], float]) -> _Eval:
    def run(e: Evidence, t: AdvisorThresholds) -> Finding:
        return _cmp(check, Derived.DRAIN_GROWTH.value, e.drain_growth, op, pick(t), unit="s/min")

    return run


def _rising(
    check: Check,
    signal: Signal,
    value: float | None,
    baseline: float | None,
    *,
    level: float,
    floor: float,
    ratio: float,
) -> Finding:
    """A p95 that is high (>= level), or risen by `ratio` over its own baseline while above
    `floor`: a database that went from 20 ms to 300 ms is in trouble before it reaches 500 ms.
    Without a baseline only the level counts."""
    if value is None:
        return Finding(check, False, signal.value, None, level, f"{signal.value} missing")
    rise = baseline is not None and value > floor and value >= ratio * baseline
    holds = value >= level or rise
    against = f"baseline {baseline:.3g}s" if baseline is not None else "no baseline"
    text = (
        f"{signal.value} {value:.3g}s ({against}; slow at >= {level:g}s or "
        f">= {ratio:g}x baseline above {floor:g}s): {'slow' if holds else 'not slow'}"
    )
    return Finding(check, holds, signal.value, value, level, text, baseline)


def _db_slow(e: Evidence, t: AdvisorThresholds) -> Finding:
    return _rising(
        Check.DB_WRITE_SLOW,
        Signal.DB_WRITE_P95,
        e.db_write_p95,
        e.db_write_p95_baseline,
        level=t.db_write_p95_high_seconds,
        floor=t.db_write_p95_normal_seconds,
        ratio=t.p95_rise_ratio,
    )


def _db_normal(e: Evidence, t: AdvisorThresholds) -> Finding:
    finding = _cmp(
        Check.DB_WRITE_NORMAL,
        Signal.DB_WRITE_P95.value,
        e.db_write_p95,
        "<=",
        t.db_write_p95_normal_seconds,
        unit="s",
    )
    return replace(finding, baseline=e.db_write_p95_baseline)


def _api_slow(e: Evidence, t: AdvisorThresholds) -> Finding:
    """The API's p95 risen over its baseline (and not trivially small); without a baseline,
    at or above the level."""
    value, baseline, level = e.api_p95, e.api_p95_baseline, t.api_p95_high_seconds
    name = Signal.API_P95.value
    if value is None:
        return Finding(Check.API_SLOW, False, name, None, level, f"{name} missing")
    rising = baseline is None or value >= t.p95_rise_ratio * baseline
    holds = value >= level and rising
    against = f"baseline {baseline:.3g}s" if baseline is not None else "no baseline"
    text = (
        f"{name} {value:.3g}s ({against}; rising at >= {t.p95_rise_ratio:g}x baseline and "
        f">= {level:g}s): {'rising' if holds else 'not rising'}"
    )
    return Finding(Check.API_SLOW, holds, name, value, level, text, baseline)


def _sync_timeouts(e: Evidence, t: AdvisorThresholds) -> Finding:
    return _cmp(
        Check.SYNC_TIMEOUTS,
        Signal.SYNC_TIMEOUTS.value,
        e.sync_timeouts,
        ">",
        t.sync_timeouts_per_second,
        unit="/s",
    )


CHECKS: dict[Check, _Eval] = {
    Check.GPU_SATURATED: _gpu(Check.GPU_SATURATED, ">=", lambda t: t.gpu_saturated_percent),
    Check.GPU_LOW: _gpu(Check.GPU_LOW, "<", lambda t: t.gpu_low_percent),
    Check.GPU_IDLE: _gpu(Check.GPU_IDLE, "<=", lambda t: t.gpu_idle_percent),
    Check.BEHIND: _drain(Check.BEHIND, ">=", lambda t: t.drain_behind_seconds),
    Check.CAUGHT_UP: _drain(Check.CAUGHT_UP, "<=", lambda t: t.drain_caught_up_seconds),
    Check.DRAINED: _drain(Check.DRAINED, "<=", lambda t: t.drain_idle_seconds),
    Check.BACKLOG_GROWING: _growth(
        Check.BACKLOG_GROWING, ">", lambda t: t.drain_growing_seconds_per_minute
    ),
    Check.BACKLOG_FLAT: _growth(
        Check.BACKLOG_FLAT, "<=", lambda t: t.drain_flat_seconds_per_minute
    ),
    Check.DB_WRITE_SLOW: _db_slow,
    Check.DB_WRITE_NORMAL: _db_normal,
    Check.API_SLOW: _api_slow,
    Check.SYNC_TIMEOUTS: _sync_timeouts,
}


def run_checks(evidence: Evidence, thresholds: AdvisorThresholds) -> dict[Check, Finding]:
    return {check: CHECKS[check](evidence, thresholds) for check in Check}
