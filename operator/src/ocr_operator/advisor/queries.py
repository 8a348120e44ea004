"""The PromQL the advisor runs for one stack: the defaults, the spec's overrides, the variables.

Pure (no client): templates use string.Template (`$name`) because PromQL itself uses braces.
The metric names come from the contract that the runtime defines its metrics with
(docs/metrics.md); series are selected by the `namespace` and `ocrserving` labels that the
scrape configuration derives from the pod labels (observability/README.md). DCGM series are
matched by pod name instead, since the DCGM exporter labels them with the pod it attributes
the GPU to.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

from ocr_contract import Metric
from ocr_operator.advisor.evidence import FIELDS, Signal
from ocr_operator.model.advisor import AdvisorSpec

_STACK = 'namespace="$namespace", ocrserving="$name"'

_RUNTIME_LAG = (
    "sum(max by (group, topic, partition) ("
    f'{Metric.CONSUMER_LAG}{{{_STACK}, group="$consumer_group", topic="$jobs_topic"}}'
    f' or {Metric.CONSUMER_LAG}{{{_STACK}, group="$writer_group", topic="$results_topic"}}'
    "))"
)
_EXPORTER_LAG = (
    'sum(kafka_consumergroup_lag{consumergroup="$consumer_group", topic="$jobs_topic"}'
    ' or kafka_consumergroup_lag{consumergroup="$writer_group", topic="$results_topic"})'
)
# Lag of the whole stack: the workers on the jobs topic plus, in Writer mode, the writers on
# the result topic (so a writer that falls behind keeps the advisor from leaving Writer).
_LAG = f"{_RUNTIME_LAG} or {_EXPORTER_LAG}"


def _p95(histogram: str, extra: str = "", window: str = "$rate_window") -> str:
    return (
        f"histogram_quantile(0.95, sum by (le) "
        f"(rate({histogram}_bucket{{{_STACK}{extra}}}[{window}])))"
    )


# Probes and scrapes are frequent and instant: they would hide slow user requests.
_USER_ROUTES = ', route!~"/healthz|/readyz|/metrics"'
# What the workers take from the jobs topic: the runtime's counter, else the committed offsets
# that kafka-exporter reports (they advance by the same messages).
_CONSUME_RATE = (
    f"sum(rate({Metric.JOBS_CONSUMED}{{{_STACK}}}[$rate_window]))"
    ' or sum(rate(kafka_consumergroup_current_offset{consumergroup="$consumer_group", '
    'topic="$jobs_topic"}[$rate_window]))'
)


DEFAULT_QUERIES: dict[Signal, str] = {
    # DCGM first (with or without honor_labels), then the runtime's NVML gauge, then the
    # inference thread's busy ratio (the accelerator's utilisation on CPU-only stacks).
    Signal.GPU_UTILIZATION: (
        'avg(DCGM_FI_DEV_GPU_UTIL{namespace="$namespace", pod=~"$name-worker-.+"})'
        ' or avg(DCGM_FI_DEV_GPU_UTIL{exported_namespace="$namespace", '
        'exported_pod=~"$name-worker-.+"})'
        f" or 100 * avg({Metric.GPU_UTILIZATION}{{{_STACK}}})"
        f" or 100 * avg({Metric.INFERENCE_BUSY}{{{_STACK}}})"
    ),
    Signal.LAG: _LAG,
    Signal.LAG_TREND: f"deriv(({_LAG})[$rate_window:$step])",
    Signal.CONSUME_RATE: _CONSUME_RATE,
    Signal.DB_WRITE_P95: _p95(Metric.DB_WRITE_SECONDS),
    Signal.DB_WRITE_P95_BASELINE: _p95(Metric.DB_WRITE_SECONDS, window="$baseline_window"),
    Signal.API_P95: _p95(Metric.HTTP_REQUEST_DURATION, _USER_ROUTES),
    Signal.API_P95_BASELINE: _p95(
        Metric.HTTP_REQUEST_DURATION, _USER_ROUTES, window="$baseline_window"
    ),
    # An API that never answered 504 may not expose the counter yet: no series is no timeout.
    Signal.SYNC_TIMEOUTS: (
        f"sum(rate({Metric.SYNC_TIMEOUTS}{{{_STACK}}}[$rate_window])) or vector(0)"
    ),
}


@dataclass(frozen=True)
class StackRef:
    """What the queries of one OCRServing are about (all validated names: the CRD restricts
    them to characters that need no escaping inside a PromQL string)."""

    namespace: str
    name: str
    consumer_group: str
    writer_group: str
    jobs_topic: str
    results_topic: str


def resolve_queries(spec: AdvisorSpec, stack: StackRef) -> dict[Signal, str]:
    """Each signal's PromQL with the variables filled in (override or default)."""
    overrides: dict[Signal, str | None] = {
        signal: getattr(spec.queries, FIELDS[signal]) for signal in Signal
    }
    # The subquery step keeps about 30 points in the trend's range whatever its length.
    step = max(1, spec.rate_window_seconds // 30)
    variables = {
        "namespace": stack.namespace,
        "name": stack.name,
        "consumer_group": stack.consumer_group,
        "writer_group": stack.writer_group,
        "jobs_topic": stack.jobs_topic,
        "results_topic": stack.results_topic,
        "window": f"{spec.window_seconds}s",
        "rate_window": f"{spec.rate_window_seconds}s",
        "baseline_window": f"{spec.baseline_window_seconds}s",
        "step": f"{step}s",
    }
    return {
        signal: Template(overrides[signal] or DEFAULT_QUERIES[signal]).substitute(variables)
        for signal in Signal
    }
