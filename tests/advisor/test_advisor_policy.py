"""Unit tests of the policies (Manual, Recommend, Auto), the pin and approvals, and of the
advisor's spec validation."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ocr_operator.advisor.policy import (
    APPROVE_ANNOTATION,
    PIN_ANNOTATION,
    Action,
    Approval,
    Plan,
    is_pinned,
    plan,
)
from ocr_operator.advisor.rules import Decision, RuleName, Verdict
from ocr_operator.model.advisor import AdvisorSpec
from ocr_operator.model.enums import Mode, Policy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TO_BATCHED = Decision(
    Verdict.RECOMMEND, Mode.STANDARD, "GpuSaturated", Mode.BATCHED, RuleName.GPU_SATURATED, NOW
)
PENDING = Decision(
    Verdict.PENDING, Mode.STANDARD, "GpuSaturated", Mode.BATCHED, RuleName.GPU_SATURATED, NOW
)
UNAVAILABLE = Decision(Verdict.UNAVAILABLE, Mode.STANDARD, "missing metrics: lag")
NONE = Approval(mode=None)


@pytest.mark.parametrize(
    ("decision", "policy", "pinned", "approval", "consumed", "expected"),
    [
        # Manual: evidence only, whatever the decision
        (TO_BATCHED, Policy.MANUAL, False, Approval(Mode.BATCHED), None,
         Plan(Action.REPORT, None, None)),
        # Recommend: publish, wait for the approval
        (TO_BATCHED, Policy.RECOMMEND, False, NONE, None,
         Plan(Action.RECOMMEND, Mode.BATCHED, None)),
        (TO_BATCHED, Policy.RECOMMEND, False, Approval(Mode.WRITER), None,
         Plan(Action.RECOMMEND, Mode.BATCHED, None)),
        (TO_BATCHED, Policy.RECOMMEND, False, Approval(Mode.BATCHED), None,
         Plan(Action.APPLY, None, Mode.BATCHED)),
        # an approval counts once while the annotation keeps its value
        (TO_BATCHED, Policy.RECOMMEND, False, Approval(Mode.BATCHED), Mode.BATCHED,
         Plan(Action.RECOMMEND, Mode.BATCHED, Mode.BATCHED)),
        # removing or changing the annotation re-arms it
        (TO_BATCHED, Policy.RECOMMEND, False, NONE, Mode.BATCHED,
         Plan(Action.RECOMMEND, Mode.BATCHED, None)),
        (TO_BATCHED, Policy.RECOMMEND, False, Approval(Mode.WRITER), Mode.BATCHED,
         Plan(Action.RECOMMEND, Mode.BATCHED, None)),
        # an approval without a standing recommendation does nothing
        (PENDING, Policy.RECOMMEND, False, Approval(Mode.BATCHED), None,
         Plan(Action.REPORT, None, None)),
        (UNAVAILABLE, Policy.AUTO, False, NONE, None, Plan(Action.REPORT, None, None)),
        # Auto applies
        (TO_BATCHED, Policy.AUTO, False, NONE, None, Plan(Action.APPLY, None, None)),
        (PENDING, Policy.AUTO, False, NONE, None, Plan(Action.REPORT, None, None)),
        # the pin keeps the mode under both Recommend and Auto, approval or not
        (TO_BATCHED, Policy.AUTO, True, NONE, None, Plan(Action.PINNED, Mode.BATCHED, None)),
        (TO_BATCHED, Policy.RECOMMEND, True, Approval(Mode.BATCHED), None,
         Plan(Action.PINNED, Mode.BATCHED, None)),
    ],
)  # fmt: skip
def test_policy_table(  # noqa: PLR0917 (one parameter per table column)
    decision: Decision,
    policy: Policy,
    pinned: bool,
    approval: Approval,
    consumed: Mode | None,
    expected: Plan,
) -> None:
    got = plan(decision, policy, pinned=pinned, approval=approval, consumed_approval=consumed)
    assert got == expected


@pytest.mark.parametrize(
    ("policy", "approval", "expected"),
    [
        (Policy.AUTO, NONE, Plan(Action.DEFERRED, Mode.BATCHED, None)),
        # an approval waits for the rollout and is not consumed meanwhile
        (Policy.RECOMMEND, Approval(Mode.BATCHED), Plan(Action.DEFERRED, Mode.BATCHED, None)),
        (Policy.RECOMMEND, NONE, Plan(Action.RECOMMEND, Mode.BATCHED, None)),
        (Policy.MANUAL, NONE, Plan(Action.REPORT, None, None)),
    ],
)
def test_a_stack_still_rolling_out_defers_the_move(
    policy: Policy, approval: Approval, expected: Plan
) -> None:
    got = plan(TO_BATCHED, policy, pinned=False, approval=approval, consumed_approval=None,
               settled=False)  # fmt: skip
    assert got == expected


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, Approval(mode=None)),
        ({APPROVE_ANNOTATION: "Writer"}, Approval(mode=Mode.WRITER)),
        ({APPROVE_ANNOTATION: " Batched "}, Approval(mode=Mode.BATCHED)),
        ({APPROVE_ANNOTATION: ""}, Approval(mode=None)),
        ({APPROVE_ANNOTATION: "writer"}, Approval(mode=None, invalid="writer")),
        ({APPROVE_ANNOTATION: "yes"}, Approval(mode=None, invalid="yes")),
    ],
)
def test_approval_annotation_names_a_mode(annotations: dict[str, str], expected: Approval) -> None:
    assert Approval.parse(annotations) == expected


@pytest.mark.parametrize(
    ("value", "pinned"),
    [(None, False), ("true", True), ("True", True), ("Batched", True), ("false", False),
     ("", False), ("0", False)],
)  # fmt: skip
def test_pin_annotation(value: str | None, pinned: bool) -> None:
    annotations = {} if value is None else {PIN_ANNOTATION: value}
    assert is_pinned(annotations) is pinned


def test_spec_defaults_match_the_documented_ones() -> None:
    spec = AdvisorSpec()
    assert (spec.window_seconds, spec.recovery_window_seconds, spec.cooldown_seconds) == (
        300,
        900,
        900,
    )
    assert spec.thresholds.gpu_saturated_percent == 80
    assert spec.thresholds.gpu_low_percent == 60


def test_spec_reads_camel_case_from_the_resource() -> None:
    spec = AdvisorSpec.model_validate(
        {
            "windowSeconds": 5,
            "cooldownSeconds": 10,
            "thresholds": {"gpuSaturatedPercent": 70, "dbWriteP95HighSeconds": 1},
            "queries": {"lag": 'sum(my_lag{namespace="$namespace"})'},
            "prometheusUrl": "http://prometheus.monitoring:9090/",
        }
    )
    assert spec.window_seconds == 5
    assert spec.thresholds.gpu_saturated_percent == 70
    assert spec.queries.lag == 'sum(my_lag{namespace="$namespace"})'
    assert spec.prometheus_url == "http://prometheus.monitoring:9090"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"thresholds": {"gpuLowPercent": 85}}, "gpuLowPercent < gpuSaturatedPercent"),
        ({"thresholds": {"gpuIdlePercent": 70}}, "gpuIdlePercent <= gpuLowPercent"),
        (
            {"thresholds": {"drainFlatSecondsPerMinute": 3}},
            "drainFlatSecondsPerMinute < drainGrowingSecondsPerMinute",
        ),
        ({"thresholds": {"drainCaughtUpSeconds": 30}}, "drainCaughtUpSeconds < drainBehindSeconds"),
        ({"thresholds": {"drainIdleSeconds": 11}}, "drainIdleSeconds <= drainCaughtUpSeconds"),
        ({"thresholds": {"p95RiseRatio": 1}}, "greater than 1"),
        ({"baselineWindowSeconds": 120}, "baselineWindowSeconds must exceed rateWindowSeconds"),
        ({"thresholds": {"dbWriteP95NormalSeconds": 0.5}}, "dbWriteP95NormalSeconds"),
        ({"queries": {"lag": "sum(x{pod='$pod'})"}}, "unknown query variables ['pod']"),
        ({"queries": {"gpuUtilization": "up $"}}, "malformed $variable"),
        ({"queries": {"apiP95": "  "}}, "a query must be"),
        ({"prometheusUrl": "file:///etc/passwd"}, "should match pattern"),
        ({"prometheusUrl": "http://"}, "should match pattern"),
        ({"windowSeconds": 1000}, "recoveryWindowSeconds must be at least windowSeconds"),
        ({"windowSeconds": 0}, "greater than or equal to 1"),
        ({"minSamples": 0}, "greater than or equal to 1"),
    ],
)
def test_spec_rejects_bad_values_with_a_clear_message(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        AdvisorSpec.model_validate(raw)
