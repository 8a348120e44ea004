"""`spec.advisor`: how the advisor reads Prometheus and when it may switch modes.

Pure pydantic (no client imports): the CRD schema, the operator and the advisor's rules all
read these. Durations are whole seconds so the schema stays simple and CEL can compare them;
cross-field rules exist twice on purpose: as CEL (the apiserver rejects a bad spec) and as
pydantic validators (the rules never run on thresholds that contradict each other).
"""

from __future__ import annotations

from string import Template
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator, model_validator

from ocr_operator.model._base import WireModel

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
    "step",
)
_MAX_QUERY_CHARS = 4096
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=_MAX_QUERY_CHARS)]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+\S*$", max_length=2048)]


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class AdvisorThresholds(
    WireModel,
    json_schema_extra=_cel(
        (
            "self.gpuIdlePercent <= self.gpuLowPercent && "
            "self.gpuLowPercent < self.gpuSaturatedPercent",
            "thresholds need gpuIdlePercent <= gpuLowPercent < gpuSaturatedPercent",
        ),
        (
            "self.lagFlatPerSecond < self.lagGrowingPerSecond",
            "thresholds need lagFlatPerSecond < lagGrowingPerSecond",
        ),
        (
            "self.dbWriteP95NormalSeconds < self.dbWriteP95HighSeconds",
            "thresholds need dbWriteP95NormalSeconds < dbWriteP95HighSeconds",
        ),
    ),
):
    """Where each rule of docs/advisor.md trips. The paired thresholds (saturated/low/idle,
    growing/flat, high/normal) leave a dead band between them so noise near one edge cannot
    satisfy a rule and its way back at the same time."""

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
        description="GPU utilisation below which a growing lag is blamed on "
        "the downstream (-> Writer).",
    )
    gpu_idle_percent: float = Field(
        30.0,
        ge=0,
        le=100,
        description="GPU utilisation at or below which Batched may go back "
        "to Standard (with the lag near zero).",
    )
    lag_growing_per_second: float = Field(
        1.0, gt=0, description="Lag trend (messages per second) above which lag counts as growing."
    )
    lag_flat_per_second: float = Field(
        0.1, ge=0, description="Lag trend at or below which lag counts as flat or shrinking."
    )
    lag_idle_messages: float = Field(
        10.0,
        ge=0,
        description="Consumer lag (messages) at or below which the queue counts as empty.",
    )
    db_write_p95_high_seconds: float = Field(
        0.5, gt=0, description="Database write p95 at or above which the downstream is slow."
    )
    db_write_p95_normal_seconds: float = Field(
        0.2,
        gt=0,
        description="Database write p95 at or below which the downstream is healthy "
        "again (Writer -> Batched).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.gpu_idle_percent <= self.gpu_low_percent < self.gpu_saturated_percent:
            raise ValueError(
                "thresholds need gpuIdlePercent <= gpuLowPercent < gpuSaturatedPercent"
            )
        if not self.lag_flat_per_second < self.lag_growing_per_second:
            raise ValueError("thresholds need lagFlatPerSecond < lagGrowingPerSecond")
        if not self.db_write_p95_normal_seconds < self.db_write_p95_high_seconds:
            raise ValueError("thresholds need dbWriteP95NormalSeconds < dbWriteP95HighSeconds")
        return self


class AdvisorQueries(WireModel):
    """PromQL overrides; unset ones use the defaults of docs/advisor.md. A query must return
    one number and may use the variables `$namespace`, `$name` (of the OCRServing),
    `$consumer_group`, `$writer_group`, `$jobs_topic`, `$results_topic` (from spec.kafka),
    `$window`, `$rate_window` and `$step` (durations such as `300s`)."""

    gpu_utilization: PromQL | None = Field(
        None, description="Average GPU utilisation of the worker pods, percent (0-100)."
    )
    lag: PromQL | None = Field(None, description="Consumer lag of the workers, messages.")
    lag_trend: PromQL | None = Field(
        None, description="Change of the lag over the rate window, messages per second."
    )
    db_write_p95: PromQL | None = Field(None, description="Database write p95, seconds.")
    api_p95: PromQL | None = Field(None, description="API request p95, seconds (reported only).")

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
    json_schema_extra=_cel(
        (
            "self.recoveryWindowSeconds >= self.windowSeconds",
            "recoveryWindowSeconds must be at least windowSeconds (the way back is judged "
            "over the longer window)",
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
        return self
