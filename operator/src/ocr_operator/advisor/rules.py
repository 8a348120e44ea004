"""The switching table of the architecture seed as pure code: evidence in, decision out.

No Prometheus or Kubernetes import (an import-linter contract checks it). The caller feeds one
`Evidence` per evaluation into `observe`, persists the returned `AdvisorWindow` (it is small:
one streak per rule, not the raw samples) and asks `decide` what to do. docs/advisor.md
explains the rules and their defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from ocr_operator.model._base import WireModel
from ocr_operator.model.advisor import AdvisorSpec, AdvisorThresholds
from ocr_operator.model.enums import Mode


class Signal(StrEnum):
    """A metric the advisor reads; the value is its key in status and in the spec's queries."""

    GPU_UTILIZATION = "gpuUtilization"
    LAG = "lag"
    LAG_TREND = "lagTrend"
    DB_WRITE_P95 = "dbWriteP95"
    API_P95 = "apiP95"


# Every rule reads these; without all of them the advisor is unavailable. API p95 is reported
# only (the seed's "API p95 up" row is about introducing the asynchronous design at all).
REQUIRED_SIGNALS = (Signal.GPU_UTILIZATION, Signal.LAG, Signal.LAG_TREND, Signal.DB_WRITE_P95)


class Verdict(StrEnum):
    """What one evaluation concluded."""

    UNAVAILABLE = "Unavailable"  # evidence incomplete: keep the mode
    STEADY = "Steady"  # no rule of the current mode holds
    PENDING = "Pending"  # a rule holds, not yet for its whole window
    COOLDOWN = "Cooldown"  # a rule held for its window, but the last change is too recent
    RECOMMEND = "Recommend"  # move to `Decision.target`


class RuleName(StrEnum):
    """Why a move is proposed; also the reason of the TransitionRecommended condition."""

    GPU_SATURATED = "GpuSaturated"
    DOWNSTREAM_BOUND = "DownstreamBound"
    DOWNSTREAM_RECOVERED = "DownstreamRecovered"
    GPU_IDLE = "GpuIdle"


class Evidence(WireModel):
    """The signals at one instant; None where the metric could not be read."""

    at: datetime
    gpu_utilization: float | None = None
    lag: float | None = None
    lag_trend: float | None = None
    db_write_p95: float | None = None
    api_p95: float | None = None

    def value(self, signal: Signal) -> float | None:
        values: dict[Signal, float | None] = {
            Signal.GPU_UTILIZATION: self.gpu_utilization,
            Signal.LAG: self.lag,
            Signal.LAG_TREND: self.lag_trend,
            Signal.DB_WRITE_P95: self.db_write_p95,
            Signal.API_P95: self.api_p95,
        }
        return values[signal]

    def missing(self) -> list[Signal]:
        return [signal for signal in REQUIRED_SIGNALS if self.value(signal) is None]

    def numbers(self) -> dict[str, float]:
        """The evidence map of status.recommendation: signal key -> value, present ones only."""
        pairs = ((signal.value, self.value(signal)) for signal in Signal)
        return {key: value for key, value in pairs if value is not None}


@dataclass(frozen=True)
class _Complete:
    """Evidence whose required signals are all present (what the predicates read)."""

    gpu: float
    lag: float
    trend: float
    db_p95: float

    @classmethod
    def of(cls, evidence: Evidence) -> _Complete | None:
        gpu, lag = evidence.gpu_utilization, evidence.lag
        trend, db_p95 = evidence.lag_trend, evidence.db_write_p95
        if gpu is None or lag is None or trend is None or db_p95 is None:
            return None
        return cls(gpu=gpu, lag=lag, trend=trend, db_p95=db_p95)


@dataclass(frozen=True)
class Rule:
    name: RuleName
    source: Mode
    target: Mode
    recovery: bool  # a move back to a lighter mode: judged over the longer recovery window
    holds: Callable[[_Complete, AdvisorThresholds], bool]
    explain: Callable[[_Complete, AdvisorThresholds], str]


def _gpu_saturated(e: _Complete, t: AdvisorThresholds) -> bool:
    return e.gpu >= t.gpu_saturated_percent and e.trend > t.lag_growing_per_second


def _downstream_bound(e: _Complete, t: AdvisorThresholds) -> bool:
    return (
        e.gpu < t.gpu_low_percent
        and e.trend > t.lag_growing_per_second
        and e.db_p95 >= t.db_write_p95_high_seconds
    )


def _downstream_recovered(e: _Complete, t: AdvisorThresholds) -> bool:
    return e.db_p95 <= t.db_write_p95_normal_seconds and e.trend <= t.lag_flat_per_second


def _gpu_idle(e: _Complete, t: AdvisorThresholds) -> bool:
    return (
        e.gpu <= t.gpu_idle_percent
        and e.lag <= t.lag_idle_messages
        and e.trend <= t.lag_flat_per_second
    )


def _say_saturated(e: _Complete, t: AdvisorThresholds) -> str:
    return (
        f"GPU {e.gpu:.0f}% >= {t.gpu_saturated_percent:.0f}% and lag growing "
        f"{e.trend:.2f}/s > {t.lag_growing_per_second:g}/s"
    )


def _say_bound(e: _Complete, t: AdvisorThresholds) -> str:
    return (
        f"GPU {e.gpu:.0f}% < {t.gpu_low_percent:.0f}%, lag growing {e.trend:.2f}/s and "
        f"DB write p95 {e.db_p95:.3f}s >= {t.db_write_p95_high_seconds:g}s"
    )


def _say_recovered(e: _Complete, t: AdvisorThresholds) -> str:
    return (
        f"DB write p95 {e.db_p95:.3f}s <= {t.db_write_p95_normal_seconds:g}s and lag "
        f"trend {e.trend:.2f}/s <= {t.lag_flat_per_second:g}/s"
    )


def _say_idle(e: _Complete, t: AdvisorThresholds) -> str:
    return (
        f"GPU {e.gpu:.0f}% <= {t.gpu_idle_percent:.0f}%, lag {e.lag:.0f} <= "
        f"{t.lag_idle_messages:g} and not growing"
    )


# Order matters only between rules of one source mode; their conditions exclude each other
# (GPU >= saturated vs < low; lag growing vs flat), so at most one holds at a time.
RULES: tuple[Rule, ...] = (
    Rule(
        RuleName.GPU_SATURATED, Mode.STANDARD, Mode.BATCHED, False, _gpu_saturated, _say_saturated
    ),
    # The downstream, not the GPU, holds the stack back: batching would not help, so Standard
    # goes straight to Writer, like Batched does.
    Rule(
        RuleName.DOWNSTREAM_BOUND, Mode.STANDARD, Mode.WRITER, False, _downstream_bound, _say_bound
    ),
    Rule(
        RuleName.DOWNSTREAM_BOUND, Mode.BATCHED, Mode.WRITER, False, _downstream_bound, _say_bound
    ),
    Rule(RuleName.GPU_IDLE, Mode.BATCHED, Mode.STANDARD, True, _gpu_idle, _say_idle),
    Rule(
        RuleName.DOWNSTREAM_RECOVERED,
        Mode.WRITER,
        Mode.BATCHED,
        True,
        _downstream_recovered,
        _say_recovered,
    ),
)


def rules_from(mode: Mode) -> tuple[Rule, ...]:
    return tuple(rule for rule in RULES if rule.source is mode)


class Streak(WireModel):
    """A run of consecutive evaluations in which one rule held."""

    since: datetime
    last: datetime
    count: int = Field(ge=1)


class AdvisorWindow(WireModel):
    """What the advisor remembers between evaluations (persisted in status.advisor.window)."""

    mode: Mode | None = None  # mode the streaks were observed under
    mode_since: datetime | None = None  # when that mode became active, as far as known
    streaks: dict[RuleName, Streak] = Field(default_factory=dict)
    latest: Evidence | None = None


def observe(
    window: AdvisorWindow, mode: Mode, evidence: Evidence, spec: AdvisorSpec
) -> AdvisorWindow:
    """Fold one evaluation into the window.

    A mode change (by the advisor, the user or the first evaluation) restarts every streak and
    the cooldown. Incomplete evidence ends every streak: no move is ever based on missing data.
    A gap between evaluations longer than the rule's window (and than three intervals, so a
    window shorter than the interval still fills) also ends its streak: an operator that was
    down does not bridge two unrelated observations.
    """
    if window.mode != mode:
        window = AdvisorWindow(mode=mode, mode_since=evidence.at)
    complete = _Complete.of(evidence)
    streaks: dict[RuleName, Streak] = {}
    if complete is not None:
        for rule in rules_from(mode):
            if not rule.holds(complete, spec.thresholds):
                continue
            max_gap = max(_window_of(rule, spec), timedelta(seconds=3 * spec.interval_seconds))
            streaks[rule.name] = _extend(window.streaks.get(rule.name), evidence.at, max_gap)
    return window.model_copy(update={"streaks": streaks, "latest": evidence})


def _extend(streak: Streak | None, at: datetime, max_gap: timedelta) -> Streak:
    if streak is None or at <= streak.last or at - streak.last > max_gap:
        return Streak(since=at, last=at, count=1)
    return Streak(since=streak.since, last=at, count=streak.count + 1)


def _window_of(rule: Rule, spec: AdvisorSpec) -> timedelta:
    seconds = spec.recovery_window_seconds if rule.recovery else spec.window_seconds
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    mode: Mode
    message: str
    target: Mode | None = None
    rule: RuleName | None = None
    since: datetime | None = None  # when the rule started to hold
    evidence: Evidence | None = None


def decide(window: AdvisorWindow, now: datetime, spec: AdvisorSpec) -> Decision:
    """What the advisor concludes from the window; never a move on missing data."""
    evidence, mode = window.latest, window.mode
    if evidence is None or mode is None:
        return Decision(Verdict.UNAVAILABLE, mode or Mode.STANDARD, "no evaluation yet")
    missing = evidence.missing()
    if missing:
        names = ", ".join(signal.value for signal in missing)
        return Decision(Verdict.UNAVAILABLE, mode, f"missing metrics: {names}", evidence=evidence)
    complete = _Complete.of(evidence)
    assert complete is not None  # no required signal is missing
    for rule in rules_from(mode):
        streak = window.streaks.get(rule.name)
        if streak is not None:
            return _judge(rule, streak, window, complete, now=now, spec=spec)
    return Decision(Verdict.STEADY, mode, f"{mode.value}: no rule holds", evidence=evidence)


def _judge(
    rule: Rule,
    streak: Streak,
    window: AdvisorWindow,
    complete: _Complete,
    *,
    now: datetime,
    spec: AdvisorSpec,
) -> Decision:
    needed = _window_of(rule, spec)
    held = streak.last - streak.since
    base = (
        f"{rule.name.value} ({rule.source.value} -> {rule.target.value}): "
        f"{rule.explain(complete, spec.thresholds)}"
    )
    if held < needed or streak.count < spec.min_samples:
        message = (
            f"{base}; held {_fmt(held)} of {_fmt(needed)} over {streak.count} of "
            f"at least {spec.min_samples} evaluations"
        )
        return _about(rule, streak, window, Verdict.PENDING, message)
    cooldown_end = cooldown_until(window, spec)
    if cooldown_end is not None and now < cooldown_end:
        message = f"{base}; cooling down until {cooldown_end.isoformat()}"
        return _about(rule, streak, window, Verdict.COOLDOWN, message)
    message = f"{base}; held {_fmt(held)} over {streak.count} evaluations"
    return _about(rule, streak, window, Verdict.RECOMMEND, message)


def _about(
    rule: Rule, streak: Streak, window: AdvisorWindow, verdict: Verdict, message: str
) -> Decision:
    return Decision(
        verdict,
        rule.source,
        message,
        target=rule.target,
        rule=rule.name,
        since=streak.since,
        evidence=window.latest,
    )


def cooldown_until(window: AdvisorWindow, spec: AdvisorSpec) -> datetime | None:
    if window.mode_since is None:
        return None
    return window.mode_since + timedelta(seconds=spec.cooldown_seconds)


def _fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s"
