"""Unit tests of what one evaluation writes into status and which Events it posts, and of the
handler's evaluation step (policy, pin, approval, a pending user edit of the mode)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ocr_operator.advisor.evaluate import evaluate as _evaluate
from ocr_operator.advisor.metrics import Observation
from ocr_operator.advisor.policy import APPROVE_ANNOTATION, PIN_ANNOTATION, Action, Plan
from ocr_operator.advisor.report import MAX_TRANSITIONS, AdvisorReason, Evaluation, build_report
from ocr_operator.advisor.rules import (
    AdvisorWindow,
    Decision,
    Evidence,
    RuleName,
    Signal,
    Verdict,
    decide,
    observe,
)
from ocr_operator.model import Mode, OCRServingSpec

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EVIDENCE = Evidence(
    at=NOW, gpu_utilization=91.0, lag=700.0, lag_trend=4.0, consume_rate=10.0,
    db_write_p95=0.05, api_p95=0.1,
)  # fmt: skip
# The back-pressure release rule holds whenever the database is healthy (it only acts on a
# cap); the tests about mode streaks leave it aside.
RELIEVED = "DownstreamRelieved"
RECOMMEND = Decision(
    Verdict.RECOMMEND, Mode.STANDARD, "GpuSaturated (Standard -> Batched): ...", Mode.BATCHED,
    RuleName.GPU_SATURATED, NOW - timedelta(minutes=5), EVIDENCE,
)  # fmt: skip
WINDOW = AdvisorWindow(mode=Mode.STANDARD, mode_since=NOW - timedelta(hours=1), latest=EVIDENCE)
SCALING = {"type": "Progressing", "status": "True", "reason": "ScalingReplicas"}
OPERATOR_READY = {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "",
                  "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip


def evaluation(decision: Decision, plan: Plan, **changes: Any) -> Evaluation:
    fields: dict[str, Any] = {"now": NOW, "evidence": EVIDENCE, "problems": {}, "window": WINDOW,
                              "decision": decision, "plan": plan}  # fmt: skip
    return Evaluation(**(fields | changes))


def conditions(patch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in patch["conditions"]}


def test_auto_moves_the_active_mode_and_records_the_transition() -> None:
    history = [{"time": "t", "from": "Batched", "to": "Standard", "reason": "r"}] * MAX_TRANSITIONS
    previous = {"activeMode": "Standard", "conditions": [OPERATOR_READY], "transitions": history}
    report = build_report(
        evaluation(RECOMMEND, Plan(Action.APPLY, None, None)), previous, generation=3
    )
    patch = report.patch
    assert patch["activeMode"] == "Batched"
    assert len(patch["transitions"]) == MAX_TRANSITIONS
    assert patch["transitions"][-1] == {
        "time": "2026-01-01T12:00:00Z", "from": "Standard", "to": "Batched",
        "reason": RECOMMEND.message, "rule": "GpuSaturated", "signals": [],
    }  # fmt: skip
    assert patch["recommendation"] is None
    assert patch["advisor"]["window"]["mode"] == "Batched"  # streaks and cooldown restart
    assert patch["advisor"]["window"]["modeSince"].startswith("2026-01-01T12:00:00")
    assert conditions(patch)["Ready"] == OPERATOR_READY  # the operator's are kept
    assert conditions(patch)["TransitionRecommended"]["reason"] == "TransitionApplied"
    assert [e.reason for e in report.events] == [AdvisorReason.TRANSITION_APPLIED]


def test_recommend_publishes_the_recommendation_once() -> None:
    plan = Plan(Action.RECOMMEND, Mode.BATCHED, None)
    first = build_report(evaluation(RECOMMEND, plan), {}, generation=1)
    recommendation = first.patch["recommendation"]
    assert recommendation["mode"] == "Batched"
    assert recommendation["since"] == "2026-01-01T11:55:00Z"
    assert recommendation["evidence"] == {
        "gpuUtilization": 91.0, "lag": 700.0, "lagTrend": 4.0, "consumeRate": 10.0,
        "dbWriteP95": 0.05, "dbWriteP95Baseline": None, "apiP95": 0.1, "apiP95Baseline": None,
        "syncTimeouts": None, "timeToDrainSeconds": 70.0, "drainGrowthSecondsPerMinute": 24.0,
    }  # fmt: skip
    assert recommendation["rule"] == "GpuSaturated"
    assert "activeMode" not in first.patch and "transitions" not in first.patch
    recommended = conditions(first.patch)["TransitionRecommended"]
    assert (recommended["status"], recommended["reason"]) == ("True", "GpuSaturated")
    assert [e.reason for e in first.events] == [AdvisorReason.TRANSITION_RECOMMENDED]
    again = build_report(evaluation(RECOMMEND, plan), first.patch, generation=1)
    assert again.events == []
    assert (
        conditions(again.patch)["TransitionRecommended"]["lastTransitionTime"]
        == (recommended["lastTransitionTime"])
    )


def test_missing_metrics_report_unavailable_with_the_reason_and_warn_once() -> None:
    decision = Decision(Verdict.UNAVAILABLE, Mode.BATCHED, "missing metrics: lag")
    problems = {Signal.LAG: "no data (no matching series)"}
    missing = EVIDENCE.model_copy(update={"lag": None})
    e = evaluation(decision, Plan(Action.REPORT, None, None), problems=problems, evidence=missing)
    report = build_report(e, {"recommendation": {"mode": "Writer"}}, generation=1)
    available = conditions(report.patch)["AdvisorAvailable"]
    assert (available["status"], available["reason"]) == ("False", "MetricsUnavailable")
    assert available["message"] == "lag: no data (no matching series)"
    assert report.patch["advisor"]["lag"] is None  # null removes the stale value
    assert report.patch["advisor"]["problems"] == {
        "gpuUtilization": None, "lag": "no data (no matching series)", "lagTrend": None,
        "consumeRate": None, "dbWriteP95": None, "dbWriteP95Baseline": None, "apiP95": None,
        "apiP95Baseline": None, "syncTimeouts": None,
    }  # fmt: skip
    assert report.patch["recommendation"] is None
    assert [(e.warning, e.reason) for e in report.events] == [
        (True, AdvisorReason.METRICS_UNAVAILABLE)
    ]
    assert build_report(e, report.patch, generation=1).events == []


@pytest.mark.parametrize(
    ("plan", "status", "reason"),
    [
        (Plan(Action.REPORT, None, None), "False", "ManualPolicy"),
        (Plan(Action.PINNED, Mode.BATCHED, None), "True", "Pinned"),
    ],
)
def test_manual_and_pinned_conditions(plan: Plan, status: str, reason: str) -> None:
    recommended = conditions(build_report(evaluation(RECOMMEND, plan), {}, 1).patch)[
        "TransitionRecommended"
    ]
    assert (recommended["status"], recommended["reason"]) == (status, reason)


def spec(policy: str, mode: str = "Standard") -> OCRServingSpec:
    return OCRServingSpec.model_validate({
        "architecture": {"mode": mode, "policy": policy},
        "kafka": {"bootstrapServers": "kafka:9092"},
        "database": {"urlSecretRef": {"name": "db", "key": "url"}},
        "advisor": {"windowSeconds": 10, "recoveryWindowSeconds": 10, "cooldownSeconds": 0,
                    "minSamples": 2},
    })  # fmt: skip


def held_window(stack_spec: OCRServingSpec) -> dict[str, Any]:
    """status.advisor with GpuSaturated held for a whole window in Standard."""
    window = AdvisorWindow()
    for seconds in (-10, -5):
        sample = EVIDENCE.model_copy(update={"at": NOW + timedelta(seconds=seconds)})
        window = observe(window, Mode.STANDARD, sample, stack_spec.advisor)
    assert decide(window, NOW, stack_spec.advisor).verdict is Verdict.PENDING
    return {"window": window.wire()}


@pytest.mark.parametrize(
    ("policy", "annotations", "status_extra", "action"),
    [
        ("Auto", {}, {}, Action.APPLY),
        ("Auto", {PIN_ANNOTATION: "true"}, {}, Action.PINNED),
        ("Recommend", {}, {}, Action.RECOMMEND),
        ("Recommend", {APPROVE_ANNOTATION: "Batched"}, {}, Action.APPLY),
        ("Manual", {APPROVE_ANNOTATION: "Batched"}, {}, Action.REPORT),
        # the user just edited spec.architecture.mode: the reconcile's reset goes first
        ("Auto", {}, {"specMode": "Writer"}, Action.DEFERRED),
        # the operator is still rolling out: the move waits for the next evaluation
        ("Auto", {}, {"conditions": [{"type": "Progressing", "status": "True"}]}, Action.DEFERRED),
        (
            "Recommend",
            {APPROVE_ANNOTATION: "Batched"},
            {"conditions": [{"type": "Progressing", "status": "True"}]},
            Action.DEFERRED,
        ),
        ("Auto", {}, {"conditions": [{"type": "Progressing", "status": "False"}]}, Action.APPLY),
        # only replicas an autoscaler added are starting: the stack runs its template
        ("Auto", {}, {"conditions": [SCALING]}, Action.APPLY),
    ],
)
def test_evaluate_applies_the_policy(
    policy: str, annotations: dict[str, str], status_extra: dict[str, str], action: Action
) -> None:
    stack_spec = spec(policy)
    raw_status = {"activeMode": "Standard", "specMode": "Standard",
                  "advisor": held_window(stack_spec)} | status_extra  # fmt: skip
    observation = Observation(evidence=EVIDENCE)
    result = _evaluate(stack_spec, raw_status, {"annotations": annotations}, NOW, observation)
    assert result.decision.verdict is Verdict.RECOMMEND
    assert result.plan.action is action


def test_evaluate_without_prometheus_is_unavailable() -> None:
    stack_spec = spec("Auto")
    result = _evaluate(stack_spec, {"activeMode": "Standard", "specMode": "Standard"}, {}, NOW,
                       None)  # fmt: skip
    assert result.decision.verdict is Verdict.UNAVAILABLE
    assert result.unavailable_reason is AdvisorReason.PROMETHEUS_NOT_CONFIGURED
    patch = build_report(result, {}, 1).patch
    assert conditions(patch)["AdvisorAvailable"]["reason"] == "PrometheusNotConfigured"
    assert [e.reason for e in build_report(result, {}, 1).events] == [
        AdvisorReason.PROMETHEUS_NOT_CONFIGURED
    ]
    manual = _evaluate(spec("Manual"), {}, {}, NOW, None)
    assert conditions(build_report(manual, {}, 1).patch)["AdvisorAvailable"]["status"] == "False"
    assert build_report(manual, {}, 1).events == []  # no Warning when nothing depends on it


def test_an_invalid_approval_is_reported_once() -> None:
    stack_spec = spec("Recommend")
    meta = {"annotations": {APPROVE_ANNOTATION: "batched"}}
    result = _evaluate(stack_spec, {}, meta, NOW, Observation(evidence=EVIDENCE))
    report = build_report(result, {}, 1)
    assert [e.reason for e in report.events if e.warning] == [AdvisorReason.INVALID_APPROVAL]
    assert build_report(result, report.patch, 1).events == []


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the apiserver applies a status merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def test_the_stored_status_forgets_what_the_last_evaluation_no_longer_has() -> None:
    """Streaks, problems and evidence that end must vanish from status, not linger."""
    stack_spec = spec("Recommend")
    stored: dict[str, Any] = {"activeMode": "Standard", "specMode": "Standard"}
    quiet = EVIDENCE.model_copy(update={"gpu_utilization": 50.0, "lag_trend": 0.0})
    readings = [
        Observation(EVIDENCE),  # GpuSaturated starts
        Observation(EVIDENCE.model_copy(update={"lag": None}), {Signal.LAG: "no data"}),
        Observation(quiet),  # nothing holds, all signals back
    ]
    for i, observation in enumerate(readings):
        at = NOW + timedelta(seconds=i)
        reading = Observation(observation.evidence.model_copy(update={"at": at}),
                              observation.problems)  # fmt: skip
        result = _evaluate(stack_spec, stored, {}, at, reading)
        stored = merge_patch(stored, build_report(result, stored, 1).patch)
        if i == 0:
            assert set(stored["advisor"]["window"]["streaks"]) - {RELIEVED} == {"GpuSaturated"}
            assert "gpuSaturated" in stored["advisor"]["window"]["held"]
    assert set(stored["advisor"]["window"]["streaks"]) - {RELIEVED} == set()
    assert "gpuSaturated" not in stored["advisor"]["window"]["held"]
    assert "problems" not in stored["advisor"] or stored["advisor"]["problems"] == {}
    assert stored["advisor"]["lag"] == 700.0
    assert AdvisorWindow.model_validate(stored["advisor"]["window"]) == result.window
