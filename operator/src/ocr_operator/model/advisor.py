"""`spec.advisor`: how the advisor reads Prometheus and when it may switch modes.

Pure pydantic (no client imports): the CRD schema, the operator and the advisor's rules all
read these. Durations are whole seconds so the schema stays simple and CEL can compare them;
cross-field rules exist twice on purpose: as CEL (the apiserver rejects a bad spec) and as
pydantic validators (the rules never run on thresholds that contradict each other).
"""

from __future__ import annotations

from string import Template
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator

from ocr_operator.model._base import WireModel, cel

# Names a query template may use (string.Template syntax: `$namespace`, `${name}`).
QUERY_VARIABLES = (
    "namespace",
    "name",
    "consumer_group",
    "writer_group",
    "jobs_topic",
    "results_topic",
    "window",
    "rate_window",
    "baseline_window",
    "step",
)
_MAX_QUERY_CHARS = 4096
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=_MAX_QUERY_CHARS)]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+\S*$", max_length=2048)]


class AdvisorThresholds(
    WireModel,
    json_schema_extra=cel(
        (
            "self.gpuIdlePercent <= self.gpuLowPercent && "
            "self.gpuLowPercent < self.gpuSaturatedPercent",
            "thresholds need gpuIdlePercent <= gpuLowPercent < gpuSaturatedPercent",
        ),
        (
            "self.drainIdleSeconds <= self.drainCaughtUpSeconds && "
            "self.drainCaughtUpSeconds < self.drainBehindSeconds",
            "thresholds need drainIdleSeconds <= drainCaughtUpSeconds < drainBehindSeconds",
        ),
        (
            "self.drainFlatSecondsPerMinute < self.drainGrowingSecondsPerMinute",
            "thresholds need drainFlatSecondsPerMinute < drainGrowingSecondsPerMinute",
        ),
        (
            "self.dbWriteP95NormalSeconds < self.dbWriteP95HighSeconds",
            "thresholds need dbWriteP95NormalSeconds < dbWriteP95HighSeconds",
        ),
    ),
):
    """Where each rule of docs/advisor.md trips. The paired thresholds (saturated/low/idle,
    behind/caught-up/idle, growing/flat, high/normal) leave a dead band between them so noise
    near one edge cannot satisfy a rule and its way back at the same time.

    The queue is judged by its time to drain (lag divided by the measured consumption rate),
    not by its length: 500 messages are nothing for a stack that consumes 200 a second and
    a long wait for one that consumes 2. The defaults suit OCR jobs of 0.05-1 s of GPU time
    whose callers poll for results and expect them within about a minute."""

    gpu_saturated_percent: float = Field(
        80.0,
        ge=0,
        le=100,
        description="GPU utilisation at or above which the GPU is the "
        "bottleneck (Standard -> Batched).",
    )
    gpu_low_percent: float = Field(
        60.0,
        ge=0,
        le=100,
        description="GPU utilisation below which a growing backlog is blamed on "
        "the downstream (-> Writer).",
    )
    gpu_idle_percent: float = Field(
        60.0,
        ge=0,
        le=100,
        description="GPU utilisation at or below which Batched may go back "
        "to Standard (with the queue drained).",
    )
    drain_behind_seconds: float = Field(
        30.0,
        gt=0,
        description="Time to drain (lag / consumption rate) at or above which the stack is "
        "behind: a job submitted now waits at least this long before a worker starts it.",
    )
    drain_caught_up_seconds: float = Field(
        10.0,
        ge=0,
        description="Time to drain at or below which the stack keeps up (Writer -> Batched).",
    )
    drain_idle_seconds: float = Field(
        2.0,
        ge=0,
        description="Time to drain at or below which the queue counts as empty "
        "(Batched -> Standard).",
    )
    drain_growing_seconds_per_minute: float = Field(
        3.0,
        gt=0,
        description="Growth of the time to drain (seconds of queued work added per minute: "
        "lag trend / consumption rate x 60) above which the backlog is rising.",
    )
    drain_flat_seconds_per_minute: float = Field(
        0.5,
        ge=0,
        description="Growth of the time to drain at or below which the backlog is flat or "
        "shrinking.",
    )
    db_write_p95_high_seconds: float = Field(
        0.5, gt=0, description="Database write p95 at or above which the downstream is slow."
    )
    db_write_p95_normal_seconds: float = Field(
        0.2,
        gt=0,
        description="Database write p95 at or below which the downstream is healthy "
        "again (Writer -> Batched); above it, a p95 risen by p95RiseRatio over its baseline "
        "counts as slow too.",
    )
    p95_rise_ratio: float = Field(
        2.0,
        gt=1,
        le=100,
        description="A p95 at or above this multiple of its own baseline (the same quantile "
        "over baselineWindowSeconds) is rising.",
    )
    api_p95_high_seconds: float = Field(
        1.0,
        gt=0,
        description="API p95 at or above which a rise over its baseline counts (below it the "
        "API is fast whatever its trend).",
    )
    sync_timeouts_per_second: float = Field(
        0.0,
        ge=0,
        description="Rate of synchronous requests that timed out above which clients should "
        "move to the asynchronous API (0: any timeout).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.gpu_idle_percent <= self.gpu_low_percent < self.gpu_saturated_percent:
            raise ValueError(
                "thresholds need gpuIdlePercent <= gpuLowPercent < gpuSaturatedPercent"
            )
        if not (
            self.drain_idle_seconds <= self.drain_caught_up_seconds < self.drain_behind_seconds
        ):
            raise ValueError(
                "thresholds need drainIdleSeconds <= drainCaughtUpSeconds < drainBehindSeconds"
            )
        if not self.drain_flat_seconds_per_minute < self.drain_growing_seconds_per_minute:
            raise ValueError(
                "thresholds need drainFlatSecondsPerMinute < drainGrowingSecondsPerMinute"
            )
        if not self.db_write_p95_normal_seconds < self.db_write_p95_high_seconds:
            raise ValueError("thresholds need dbWriteP95NormalSeconds < dbWriteP95HighSeconds")
        return self


class AdvisorQueries(WireModel):
    """PromQL overrides; unset ones use the defaults of docs/advisor.md. A query must return
    one number and may use the variables `$namespace`, `$name` (of the OCRServing),
    `$consumer_group`, `$writer_group`, `$jobs_topic`, `$results_topic` (from spec.kafka),
    `$window`, `$rate_window`, `$baseline_window` and `$step` (durations such as `300s`)."""

    gpu_utilization: PromQL | None = Field(
        None, description="Average GPU utilisation of the worker pods, percent (0-100)."
    )
    lag: PromQL | None = Field(None, description="Consumer lag of the workers, messages.")
    lag_trend: PromQL | None = Field(
        None, description="Change of the lag over the rate window, messages per second."
    )
    consume_rate: PromQL | None = Field(
        None, description="Messages the workers take from the jobs topic, per second."
    )
    db_write_p95: PromQL | None = Field(None, description="Database write p95, seconds.")
    db_write_p95_baseline: PromQL | None = Field(
        None, description="Database write p95 over the baseline window, seconds."
    )
    api_p95: PromQL | None = Field(None, description="API request p95, seconds.")
    api_p95_baseline: PromQL | None = Field(
        None, description="API request p95 over the baseline window, seconds."
    )
    sync_timeouts: PromQL | None = Field(
        None, description="Synchronous requests that timed out, per second."
    )

    @field_validator("*")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or len(value) > _MAX_QUERY_CHARS:
            raise ValueError(f"a query must be 1-{_MAX_QUERY_CHARS} characters")
        template = Template(value)
        if not template.is_valid():
            raise ValueError("a query has a malformed $variable (write $$ for a literal $)")
        unknown = set(template.get_identifiers()) - set(QUERY_VARIABLES)
        if unknown:
            raise ValueError(
                f"unknown query variables {sorted(unknown)}; known: {list(QUERY_VARIABLES)}"
            )
        return value


class AdvisorSpec(
    WireModel,
    json_schema_extra=cel(
        (
            "self.recoveryWindowSeconds >= self.windowSeconds",
            "recoveryWindowSeconds must be at least windowSeconds (the way back is judged "
            "over the longer window)",
        ),
        (
            "self.baselineWindowSeconds > self.rateWindowSeconds",
            "baselineWindowSeconds must exceed rateWindowSeconds (a trend compares the short "
            "range with the long one)",
        ),
    ),
):
    """How the advisor evaluates this stack. Only read when `policy` is Recommend or Auto
    (under Manual the evidence is still reported)."""

    prometheus_url: HttpUrl | None = Field(
        None,
        description="Prometheus base URL (http or https). Unset: the operator's "
        "OCR_OPERATOR_PROMETHEUS_URL setting.",
    )
    interval_seconds: int = Field(30, ge=1, le=3600, description="Seconds between two evaluations.")
    window_seconds: int = Field(
        300,
        ge=1,
        le=86_400,
        description="How long a condition must hold, across at least "
        "minSamples evaluations, before a move to a heavier mode.",
    )
    recovery_window_seconds: int = Field(
        900,
        ge=1,
        le=86_400,
        description="How long a condition must hold before a move back "
        "to a lighter mode (Writer -> Batched, Batched -> Standard).",
    )
    cooldown_seconds: int = Field(
        900,
        ge=0,
        le=86_400,
        description="Quiet time after any mode change: nothing is recommended before it ends.",
    )
    min_samples: int = Field(
        3, ge=1, le=100, description="Fewest evaluations within a window for it to count."
    )
    rate_window_seconds: int = Field(
        120, ge=2, le=86_400, description="Range of rate() and deriv() in the default queries."
    )
    baseline_window_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 86_400,
        description="Range of the baseline each p95 is compared with (its trend): a p95 over "
        "rateWindowSeconds against the same quantile over this longer range.",
    )
    query_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Timeout of one Prometheus query."
    )
    thresholds: AdvisorThresholds = Field(
        default_factory=AdvisorThresholds, description="Where the rules trip."
    )
    queries: AdvisorQueries = Field(
        default_factory=AdvisorQueries, description="PromQL overrides of the default queries."
    )

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("prometheusUrl must be an http(s) URL with a host")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _windows(self) -> Self:
        if self.recovery_window_seconds < self.window_seconds:
            raise ValueError("recoveryWindowSeconds must be at least windowSeconds")
        if self.baseline_window_seconds <= self.rate_window_seconds:
            raise ValueError("baselineWindowSeconds must exceed rateWindowSeconds")
        return self


# --- The advisor's parts of status (OCRServingStatus imports them) ---------------------------

ShortText = Annotated[str, StringConstraints(max_length=1024)]
Timestamp = Annotated[str, StringConstraints(max_length=64)]
Key = Annotated[str, StringConstraints(max_length=64)]


class SignalReading(WireModel):
    """One condition of the rule behind a recommendation, transition, cap or advice: the
    signal, its value, what it was compared with and how long the condition held."""

    check: Key = Field(description="The condition, e.g. gpuSaturated, behind, dbWriteSlow.")
    signal: Key = Field(description="The signal it reads, e.g. timeToDrainSeconds.")
    value: float | None = Field(None, description="The signal's value at the decision.")
    threshold: float | None = Field(None, description="The threshold it was compared with.")
    baseline: float | None = Field(
        None, description="The signal's own baseline (p95 over baselineWindowSeconds)."
    )
    held_seconds: float = Field(0.0, description="How long the condition had held.")
    since: Timestamp | None = Field(None, description="Since when it held (RFC 3339).")
    text: ShortText = Field("", description="The comparison in words.")


class ReplicaCap(WireModel):
    """A cap on the maxReplicas of the autoscaler of the component that writes to the
    database, while the database is the bottleneck (the spec's maxReplicas is unchanged)."""

    component: Annotated[str, StringConstraints(pattern=r"^(worker|writer)$")] = Field(
        description="worker (Standard, Batched) or writer (Writer mode)."
    )
    max_replicas: int = Field(ge=1, le=1000, description="maxReplicas the HPA is rendered with.")
    rule: Key = Field(description="The rule that set it.")
    since: Timestamp = Field(description="When it was set (RFC 3339).")
    reason: ShortText = Field("", description="The rule's evidence in words.")
    signals: list[SignalReading] = Field(
        default_factory=list, max_length=16, description="The rule's conditions."
    )


class Advice(WireModel):
    """Something only a person can do (no mode fixes it), with its evidence."""

    rule: Key = Field(description="The rule, e.g. SyncTimeouts.")
    message: ShortText = Field("", description="What to do and why.")
    since: Timestamp | None = Field(None, description="Since when the rule held (RFC 3339).")
    signals: list[SignalReading] = Field(
        default_factory=list, max_length=16, description="The rule's conditions."
    )
