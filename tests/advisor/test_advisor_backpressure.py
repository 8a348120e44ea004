"""Back-pressure: while the database is the bottleneck the advisor caps the autoscaler of
whoever writes to it (status, then the rendered HPA), and releases the cap when the database
recovers, with the windows and cooldown of a mode change. Pure: no service needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ocr_operator.advisor.backpressure import CapAction, CapState, plan_cap, replica_caps
from ocr_operator.advisor.evaluate import evaluate
from ocr_operator.advisor.evidence import Evidence, Observation
from ocr_operator.advisor.report import AdvisorReason, build_report
from ocr_operator.advisor.rules import AdvisorWindow, observe
from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.model.advisor import ReplicaCap
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_operator.render.extras import autoscaler
from ocr_operator.simulate.drive import merge_patch

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# The database is slow and the stack is behind: 500 jobs at 10 jobs/s, p95 0.9 s.
SLOW = {"gpu_utilization": 40.0, "lag": 500.0, "lag_trend": 0.0, "consume_rate": 10.0,
        "db_write_p95": 0.9}  # fmt: skip
HEALTHY = SLOW | {"lag": 0.0, "db_write_p95": 0.05}


def spec(policy: str = "Auto", mode: str = "Standard", enabled: bool = True) -> OCRServingSpec:
    scaling = {"enabled": enabled, "minReplicas": 1, "maxReplicas": 6}
    return OCRServingSpec.model_validate({
        "architecture": {"mode": mode, "policy": policy},
        "kafka": {"bootstrapServers": "kafka:9092", "partitions": 12},
        "database": {"urlSecretRef": {"name": "db"}},
        "worker": {"autoscaling": scaling},
        "writer": {"autoscaling": scaling},
        "advisor": {"windowSeconds": 300, "recoveryWindowSeconds": 900, "cooldownSeconds": 900},
    })  # fmt: skip


def ev(t: float, shape: dict[str, float]) -> Evidence:
    return Evidence.model_validate({"at": T0 + timedelta(seconds=t), **shape})


def window_of(
    mode: Mode, stack: OCRServingSpec, until: float, shape: dict[str, float]
) -> AdvisorWindow:
    window = AdvisorWindow(mode=mode, mode_since=T0 - timedelta(hours=1))
    for t in range(0, int(until) + 1, 30):
        window = observe(window, mode, ev(t, shape), stack.advisor)
    return window


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_slow_database_behind_a_backlog_caps_the_workers_at_their_current_count() -> None:
    stack = spec()
    window = window_of(Mode.STANDARD, stack, 300, SLOW)
    plan = plan_cap(window, at(300), stack, CapState(), {Component.WORKER: 2}, apply=True)
    assert plan.action is CapAction.SET
    assert plan.cap is not None
    assert (plan.cap.component, plan.cap.max_replicas) == ("worker", 2)
    assert plan.cap.rule == "DownstreamBackPressure"
    checks = {s.check: s for s in plan.cap.signals}
    assert set(checks) == {"dbWriteSlow", "behind"}
    assert checks["behind"].value == pytest.approx(50.0)  # 500 jobs / 10 per second
    assert checks["behind"].held_seconds == 300.0
    assert "cap the worker autoscaler at 2 replicas (spec allows 6)" in plan.message


@pytest.mark.parametrize(
    ("until", "replicas", "enabled", "policy", "action"),
    [
        (270, 2, True, "Auto", CapAction.KEEP),  # not held for the window yet
        (300, 6, True, "Auto", CapAction.KEEP),  # already at maxReplicas: a cap changes nothing
        (300, 2, False, "Auto", CapAction.KEEP),  # no autoscaler to cap
        (300, 2, True, "Recommend", CapAction.RECOMMEND),  # advice only
    ],
)
def test_when_no_cap_is_set(
    until: float, replicas: int, enabled: bool, policy: str, action: CapAction
) -> None:
    stack = spec(policy, enabled=enabled)
    window = window_of(Mode.STANDARD, stack, until, SLOW)
    plan = plan_cap(
        window, at(until), stack, CapState(), {Component.WORKER: replicas}, apply=policy == "Auto"
    )
    assert plan.action is action
    assert plan.cap is None


def capped(since: float = -3600) -> CapState:
    cap = ReplicaCap(component="worker", max_replicas=2, rule="DownstreamBackPressure",
                     since="2025-12-31T23:00:00Z")  # fmt: skip
    return CapState(cap=cap, changed_at=at(since))


def test_the_cap_is_released_once_the_database_is_healthy_for_the_recovery_window() -> None:
    stack = spec()
    early = window_of(Mode.STANDARD, stack, 870, HEALTHY)
    assert plan_cap(early, at(870), stack, capped(), {}, apply=True).action is CapAction.KEEP
    window = window_of(Mode.STANDARD, stack, 900, HEALTHY)
    plan = plan_cap(window, at(900), stack, capped(), {}, apply=True)
    assert plan.action is CapAction.RELEASE
    assert plan.cap is None
    assert plan.message.startswith("cap of 2 worker replicas released: DownstreamRelieved")


def test_the_cooldown_holds_a_recent_cap() -> None:
    stack = spec()
    window = window_of(Mode.STANDARD, stack, 900, HEALTHY)
    plan = plan_cap(window, at(900), stack, capped(since=300), {}, apply=True)
    assert plan.action is CapAction.KEEP
    assert plan.cap is not None and plan.cap.max_replicas == 2


def test_writer_mode_moves_the_database_client_so_the_workers_cap_goes() -> None:
    stack = spec(mode="Writer")
    window = window_of(Mode.WRITER, stack, 60, SLOW)
    plan = plan_cap(window, at(60), stack, capped(), {}, apply=True)
    assert plan.action is CapAction.RELEASE
    assert "no longer writes to the database in Writer mode" in plan.message
    later = window_of(Mode.WRITER, stack, 300, SLOW)
    plan = plan_cap(later, at(300), stack, CapState(), {Component.WRITER: 3}, apply=True)
    assert plan.cap is not None and (plan.cap.component, plan.cap.max_replicas) == ("writer", 3)


def hpa_max(manifests: list[Any], component: Component) -> int:
    for manifest in manifests:
        body = manifest.body
        if manifest.kind is Kind.HORIZONTAL_POD_AUTOSCALER and body["metadata"]["name"].endswith(
            component.value
        ):
            return int(body["spec"]["maxReplicas"])
    raise AssertionError(f"no HPA for {component}")


@pytest.mark.parametrize(("cap", "expected"), [(None, 6), (3, 3), (0, 1), (40, 6)])
def test_the_rendered_hpa_honours_the_cap_within_the_spec(cap: int | None, expected: int) -> None:
    manifest = autoscaler(spec(), Instance("demo", "ns"), Component.WORKER, cap)
    assert manifest is not None
    assert manifest.body["spec"]["maxReplicas"] == expected
    assert manifest.body["spec"]["minReplicas"] == 1


def test_status_to_hpa_end_to_end_without_touching_the_spec() -> None:
    """evaluate -> status patch -> Event -> replica_caps -> render: the path the operator runs."""
    stack = spec()
    before = stack.model_dump(mode="json", by_alias=True)
    status: dict[str, Any] = {
        "activeMode": "Standard", "specMode": "Standard",
        "components": {"worker": {"desired": 2, "ready": 2}},
    }  # fmt: skip
    events = []
    for t in range(0, 331, 30):
        observation = Observation(ev(t, SLOW))
        evaluation = evaluate(stack, status, {}, at(t), observation)
        report = build_report(evaluation, status, 1)
        status = merge_patch(status, report.patch)
        events += report.events
    assert status["advisor"]["replicaCap"]["maxReplicas"] == 2
    assert [e.reason for e in events if e.reason.value.startswith("ReplicaCap")] == [
        AdvisorReason.REPLICA_CAP_APPLIED
    ]
    assert replica_caps(status) == {Component.WORKER: 2}
    plan = plan_transition(Mode.STANDARD, Observed())
    manifests = render(stack, Instance("demo", "ns"), plan, caps=replica_caps(status))
    assert hpa_max(manifests, Component.WORKER) == 2
    assert stack.model_dump(mode="json", by_alias=True) == before
    assert replica_caps({"advisor": {"replicaCap": {"component": "bogus"}}}) == {}
