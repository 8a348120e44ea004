"""Unit tests of the operator's own metrics: what a reconcile pass and an advisor evaluation
count, read back from the Prometheus exposition the `/metrics` endpoint serves."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from ocr_operator.advisor.policy import Action, Plan
from ocr_operator.advisor.report import Evaluation
from ocr_operator.advisor.rules import AdvisorWindow, Decision, Evidence, RuleName, Signal, Verdict
from ocr_operator.handlers import reconcile_pass
from ocr_operator.model import Mode
from ocr_operator.ports import KubeError
from ocr_operator.telemetry import OperatorMetrics
from tests.operator._fakes import NAME, NS, FakeKube, context, spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def samples(metrics: OperatorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, keyed by name and labels."""
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset({"namespace": NS, "ocrserving": NAME, **values}.items())


def evaluation(decision: Decision, action: Action, problems: dict[Signal, str]) -> Evaluation:
    return Evaluation(
        now=NOW,
        evidence=Evidence(at=NOW),
        problems=problems,
        window=AdvisorWindow(),
        decision=decision,
        plan=Plan(action, None, None),
    )


def test_an_applied_move_counts_the_decision_and_the_transition() -> None:
    metrics = OperatorMetrics()
    move = Decision(
        Verdict.RECOMMEND, Mode.STANDARD, "saturated", Mode.BATCHED, RuleName.GPU_SATURATED
    )
    metrics.evaluated(NS, NAME, evaluation(move, Action.APPLY, {}))
    seen = samples(metrics)
    decided = labels(rule="GpuSaturated", verdict="Recommend", action="Apply")
    assert seen[("ocr_operator_advisor_decisions_total", decided)] == 1
    moved = labels(from_mode="Standard", to_mode="Batched", rule="GpuSaturated")
    assert seen[("ocr_operator_transitions_total", moved)] == 1


def test_a_report_without_a_move_counts_no_transition_but_its_query_errors() -> None:
    metrics = OperatorMetrics()
    unavailable = Decision(Verdict.UNAVAILABLE, Mode.STANDARD, "missing metrics: gpu")
    problems = {Signal.GPU_UTILIZATION: "no data", Signal.LAG: "Prometheus unreachable"}
    metrics.evaluated(NS, NAME, evaluation(unavailable, Action.REPORT, problems))
    metrics.evaluated(NS, NAME, evaluation(unavailable, Action.REPORT, problems))
    seen = samples(metrics)
    decided = labels(rule="none", verdict="Unavailable", action="Report")
    assert seen[("ocr_operator_advisor_decisions_total", decided)] == 2
    for signal in problems:
        errors = labels(signal=signal.value)
        assert seen[("ocr_operator_prometheus_query_errors_total", errors)] == 2
    assert not [key for key in seen if key[0] == "ocr_operator_transitions_total"]


async def test_a_reconcile_pass_is_timed_and_an_apiserver_failure_counted() -> None:
    kube = FakeKube(spec("Standard"))
    ctx = context(kube)
    await reconcile_pass(ctx, NS, NAME)

    async def refuse(namespace: str, name: str, live: object = None) -> None:
        raise KubeError(503, "apiserver unavailable")

    kube.get_own = refuse  # type: ignore[method-assign]
    delay = await reconcile_pass(ctx, NS, NAME)
    assert delay == ctx.settings.error_backoff_seconds
    seen = samples(ctx.metrics)
    assert seen[("ocr_operator_reconcile_duration_seconds_count", labels())] == 2
    assert seen[("ocr_operator_reconcile_errors_total", labels(error="apiserver"))] == 1
    assert ("ocr_operator_reconcile_errors_total", labels(error="internal")) not in seen


def test_the_leader_gauge_starts_at_zero() -> None:
    metrics = OperatorMetrics()
    assert samples(metrics)[("ocr_operator_leader", frozenset())] == 0
    metrics.leader.set(1)
    assert samples(metrics)[("ocr_operator_leader", frozenset())] == 1
