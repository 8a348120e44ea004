"""Prometheus metrics of the HTTP API. Names and labels are a contract: the operator reads
them (API latency and sync timeouts decide the switch to the standard mode)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ocr_contract import Metric

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    """Registered once per registry (one per app, so tests can build many apps)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter(
            "ocr_http_requests_total", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            Metric.HTTP_REQUEST_DURATION, "HTTP request duration by route template.",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "ocr_http_requests_in_flight", "HTTP requests being served.", registry=r
        )
        self.jobs_submitted = Counter(
            "ocr_jobs_submitted_total",
            "Submissions answered with a job (idempotent repeats included).",
            registry=r,
        )  # fmt: skip
        self.rejected = Counter(
            "ocr_jobs_rejected_total", "Submissions refused, by error code.", ["code"],
            registry=r,
        )  # fmt: skip
        self.upload_slots = Gauge(
            "ocr_upload_slots",
            "Submissions that may hold an upload in memory at once (from the CPU quota).",
            registry=r,
        )
        self.uploads_in_progress = Gauge(
            "ocr_uploads_in_progress", "Submissions holding an upload slot now.", registry=r
        )
        self.sync_timeouts = Counter(
            Metric.SYNC_TIMEOUTS, "POST /v1/ocr calls answered 504 (job not done in time).",
            registry=r,
        )  # fmt: skip


def register_model_ready(registry: CollectorRegistry, is_ready: Callable[[], bool]) -> Gauge:
    """`ocr_model_ready`: only in processes that hold a model (absent from the api role)."""
    gauge = Gauge(
        "ocr_model_ready", "1 when this process's OCR model is loaded.", registry=registry
    )
    gauge.set_function(lambda: 1.0 if is_ready() else 0.0)
    return gauge


class OutboxMetrics:
    """The API's outbox sweeper: how old the oldest unfinished job is (a job stuck anywhere,
    whatever the cause, makes it grow), and how many jobs it had to publish again."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.oldest_unfinished_age = Gauge(
            "ocr_oldest_unfinished_job_age_seconds",
            "Age of the oldest job not finished yet (queued or running); 0 when none.",
            registry=registry,
        )
        self.republished = Counter(
            "ocr_jobs_republished_total",
            "Jobs stored but never acknowledged by the queue, published again by the sweeper.",
            registry=registry,
        )


def render_metrics(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
