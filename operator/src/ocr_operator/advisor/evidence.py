"""The signals one evaluation reads, and the values the rules derive from them (pure).

The queue is judged by its time to drain, lag divided by the measured consumption rate, in
seconds: the raw lag says nothing without the rate (500 messages are a fraction of a second
for a stack that consumes 2,000 a second and four minutes for one that consumes 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ocr_operator.model._base import WireModel

# A queue that holds messages while nothing is consumed never drains; status JSON has no
# infinity, so it reads as this many seconds (far beyond any threshold).
UNBOUNDED_SECONDS = 1e6
# Below this consumption rate (messages per second) the stack counts as consuming nothing.
_NO_RATE = 1e-9


class Signal(StrEnum):
    """A metric the advisor reads; the value is its key in status and in the spec's queries."""

    GPU_UTILIZATION = "gpuUtilization"
    LAG = "lag"
    LAG_TREND = "lagTrend"
    CONSUME_RATE = "consumeRate"
    DB_WRITE_P95 = "dbWriteP95"
    DB_WRITE_P95_BASELINE = "dbWriteP95Baseline"
    API_P95 = "apiP95"
    API_P95_BASELINE = "apiP95Baseline"
    SYNC_TIMEOUTS = "syncTimeouts"


class Derived(StrEnum):
    """Values computed from the signals; keys in status and in the rules' explanations."""

    TIME_TO_DRAIN = "timeToDrainSeconds"
    DRAIN_GROWTH = "drainGrowthSecondsPerMinute"


# The mode rules read these; without all of them the advisor is unavailable. Baselines, the
# API's p95 and the sync timeouts only feed the checks that name them: when one is missing
# those checks do not hold (a trend without its baseline is judged on the level alone).
REQUIRED_SIGNALS = (
    Signal.GPU_UTILIZATION,
    Signal.LAG,
    Signal.LAG_TREND,
    Signal.CONSUME_RATE,
    Signal.DB_WRITE_P95,
)


class Evidence(WireModel):
    """The signals at one instant; None where the metric could not be read."""

    at: datetime
    gpu_utilization: float | None = None
    lag: float | None = None
    lag_trend: float | None = None
    consume_rate: float | None = None
    db_write_p95: float | None = None
    db_write_p95_baseline: float | None = None
    api_p95: float | None = None
    api_p95_baseline: float | None = None
    sync_timeouts: float | None = None

    def value(self, signal: Signal) -> float | None:
        return getattr(self, FIELDS[signal])  # type: ignore[no-any-return]

    def missing(self) -> list[Signal]:
        return [signal for signal in REQUIRED_SIGNALS if self.value(signal) is None]

    @property
    def time_to_drain(self) -> float | None:
        """Seconds the current backlog needs at the measured consumption rate."""
        if self.lag is None or self.consume_rate is None:
            return None
        if self.lag <= 0:
            return 0.0
        if self.consume_rate < _NO_RATE:
            return UNBOUNDED_SECONDS
        return min(self.lag / self.consume_rate, UNBOUNDED_SECONDS)

    @property
    def drain_growth(self) -> float | None:
        """Seconds of queued work the backlog gains per minute (negative: it shrinks)."""
        if self.lag_trend is None or self.consume_rate is None:
            return None
        if self.consume_rate < _NO_RATE:
            return UNBOUNDED_SECONDS if self.lag_trend > 0 else 0.0
        growth = 60.0 * self.lag_trend / self.consume_rate
        return max(-UNBOUNDED_SECONDS, min(growth, UNBOUNDED_SECONDS))

    def numbers(self) -> dict[str, float]:
        """Signal and derived key -> value, present ones only (the evidence maps of status)."""
        pairs: list[tuple[str, float | None]] = [(s.value, self.value(s)) for s in Signal]
        pairs += [
            (Derived.TIME_TO_DRAIN.value, self.time_to_drain),
            (Derived.DRAIN_GROWTH.value, self.drain_growth),
        ]
        return {key: value for key, value in pairs if value is not None}


FIELDS: dict[Signal, str] = {
    Signal.GPU_UTILIZATION: "gpu_utilization",
    Signal.LAG: "lag",
    Signal.LAG_TREND: "lag_trend",
    Signal.CONSUME_RATE: "consume_rate",
    Signal.DB_WRITE_P95: "db_write_p95",
    Signal.DB_WRITE_P95_BASELINE: "db_write_p95_baseline",
    Signal.API_P95: "api_p95",
    Signal.API_P95_BASELINE: "api_p95_baseline",
    Signal.SYNC_TIMEOUTS: "sync_timeouts",
}
EVIDENCE_KEYS: tuple[str, ...] = (*(s.value for s in Signal), *(d.value for d in Derived))


@dataclass(frozen=True)
class Observation:
    """One evaluation's evidence and, per signal that could not be read, why."""

    evidence: Evidence
    problems: dict[Signal, str] = field(default_factory=dict)

    def summary(self) -> str:
        return "; ".join(f"{signal.value}: {why}" for signal, why in self.problems.items())
