"""The operator's own Prometheus metrics (`/metrics` of `ocr-operator run --http`). Names and
labels are a contract: the chart's alert rules and the dashboard read them
(docs/metrics.md)."""

from __future__ import annotations

import enum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ocr_operator.advisor.policy import Action
from ocr_operator.advisor.report import Evaluation

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
# A reconcile is a handful of apiserver calls, a Kafka admin call, sometimes a lag read.
_RECONCILE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RESOURCE = ("namespace", "ocrserving")


class ReconcileError(enum.StrEnum):
    """Why a reconcile pass ended in an exception (the `error` label)."""

    APISERVER = "apiserver"  # the apiserver refused or could not be reached: retried
    INTERNAL = "internal"  # a bug or an unexpected answer: logged with its traceback


class OperatorMetrics:
    """One set per process (one registry per instance, so tests can build many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.reconcile_duration = Histogram(
            "ocr_operator_reconcile_duration_seconds", "Duration of one reconcile pass.",
            _RESOURCE, buckets=_RECONCILE_BUCKETS, registry=r,
        )  # fmt: skip
        self.reconcile_errors = Counter(
            "ocr_operator_reconcile_errors_total",
            "Reconcile passes that ended in an exception, by cause.",
            [*_RESOURCE, "error"], registry=r,
        )  # fmt: skip
        self.advisor_decisions = Counter(
            "ocr_operator_advisor_decisions_total",
            "Advisor evaluations by the rule that held (none: no rule), verdict and action.",
            [*_RESOURCE, "rule", "verdict", "action"], registry=r,
        )  # fmt: skip
        self.transitions = Counter(
            "ocr_operator_transitions_total",
            "Active mode changes the advisor applied, by source, target and rule.",
            [*_RESOURCE, "from_mode", "to_mode", "rule"], registry=r,
        )  # fmt: skip
        self.prometheus_query_errors = Counter(
            "ocr_operator_prometheus_query_errors_total",
            "Advisor signals whose Prometheus query failed or returned no usable number.",
            [*_RESOURCE, "signal"], registry=r,
        )  # fmt: skip
        self.leader = Gauge(
            "ocr_operator_leader", "1 while this process holds the leader Lease.", registry=r
        )

    def reconciled(self, namespace: str, name: str, seconds: float) -> None:
        self.reconcile_duration.labels(namespace, name).observe(seconds)

    def reconcile_failed(self, namespace: str, name: str, error: ReconcileError) -> None:
        self.reconcile_errors.labels(namespace, name, error.value).inc()

    def evaluated(self, namespace: str, name: str, evaluation: Evaluation) -> None:
        """Count one recorded advisor evaluation: its decision, its query problems and the
        move it applied (the same move as the `status.transitions` entry it wrote)."""
        decision, plan = evaluation.decision, evaluation.plan
        rule = decision.rule.value if decision.rule is not None else "none"
        self.advisor_decisions.labels(
            namespace, name, rule, decision.verdict.value, plan.action.value
        ).inc()
        for signal in evaluation.problems:
            self.prometheus_query_errors.labels(namespace, name, signal.value).inc()
        if plan.action is Action.APPLY and decision.target is not None:
            self.transitions.labels(
                namespace, name, decision.mode.value, decision.target.value, rule
            ).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
