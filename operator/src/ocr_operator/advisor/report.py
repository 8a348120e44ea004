"""One evaluation turned into a status merge patch and the Events to post (pure).

The advisor owns `status.advisor`, `status.recommendation`, `status.transitions`, the
AdvisorAvailable and TransitionRecommended conditions, and (only when it moves the stack)
`status.activeMode`. Values that disappear are sent as null so the merge patch removes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ocr_operator.advisor.backpressure import CapAction, CapPlan
from ocr_operator.advisor.checks import Check
from ocr_operator.advisor.evidence import EVIDENCE_KEYS
from ocr_operator.advisor.policy import Action, Plan
from ocr_operator.advisor.rules import (
    AdvisorWindow,
    Decision,
    Evidence,
    RuleName,
    Signal,
    Verdict,
    signal_readings,
)
from ocr_operator.model.enums import ConditionStatus, ConditionType, Policy

MAX_TRANSITIONS = 20
_MAX_MESSAGE = 1024

Body = dict[str, Any]


class AdvisorReason(StrEnum):
    """Reasons of the advisor's conditions and Events."""

    METRICS_AVAILABLE = "MetricsAvailable"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    PROMETHEUS_NOT_CONFIGURED = "PrometheusNotConfigured"
    STEADY = "Steady"
    PENDING = "Pending"
    COOLDOWN = "Cooldown"
    MANUAL_POLICY = "ManualPolicy"
    PINNED = "Pinned"
    WAITING_FOR_ROLLOUT = "WaitingForRollout"
    TRANSITION_APPLIED = "TransitionApplied"
    TRANSITION_RECOMMENDED = "TransitionRecommended"
    INVALID_APPROVAL = "InvalidApproval"
    REPLICA_CAP_APPLIED = "ReplicaCapApplied"
    REPLICA_CAP_RELEASED = "ReplicaCapReleased"
    REPLICA_CAP_RECOMMENDED = "ReplicaCapRecommended"
    ASYNC_CLIENTS_RECOMMENDED = "AsyncClientsRecommended"


@dataclass(frozen=True)
class Event:
    warning: bool
    reason: AdvisorReason
    message: str


@dataclass(frozen=True)
class Evaluation:
    """Everything one evaluation produced, as the handler hands it over."""

    now: datetime
    evidence: Evidence
    problems: dict[Signal, str]
    window: AdvisorWindow
    decision: Decision
    plan: Plan
    policy: Policy = Policy.AUTO
    unavailable_reason: AdvisorReason | None = None  # set when no query could even run
    ignored_approval: str | None = None  # an approve-transition value naming no mode
    cap: CapPlan = field(default_factory=lambda: CapPlan(CapAction.KEEP, None))
    advice: tuple[Decision, ...] = ()  # rules with something only a person can do


@dataclass(frozen=True)
class Report:
    patch: Body
    events: list[Event] = field(default_factory=list)


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(evaluation: Evaluation, previous: Body, generation: int | None) -> Report:
    """The status patch and Events of one evaluation; `previous` is the current status."""
    e = evaluation
    applying = e.plan.action is Action.APPLY and e.decision.target is not None
    window = e.window
    if applying:
        assert e.decision.target is not None
        # Streaks and cooldown restart in the new mode right away, so a restart of the
        # operator between this write and the reconcile cannot re-apply the same move.
        window = AdvisorWindow(mode=e.decision.target, mode_since=e.now, latest=e.evidence)
    patch: Body = {
        "advisor": _advisor(e, window),
        "recommendation": _recommendation(e),
        "conditions": _conditions(e, previous, generation),
    }
    events = _events(e, previous)
    if applying:
        assert e.decision.target is not None
        transition = {
            "time": timestamp(e.now),
            "from": e.decision.mode.value,
            "to": e.decision.target.value,
            "reason": e.decision.message[:_MAX_MESSAGE],
            "rule": e.decision.rule.value if e.decision.rule else None,
            "signals": _signals(e.decision),
        }
        history = list(previous.get("transitions") or [])
        patch["transitions"] = [*history, transition][-MAX_TRANSITIONS:]
        patch["activeMode"] = e.decision.target.value
    return Report(patch=patch, events=events)


def _advisor(e: Evaluation, window: AdvisorWindow) -> Body:
    evidence = e.evidence
    cap = e.cap.cap.model_dump(mode="json", by_alias=True) if e.cap.cap else None
    return {
        "gpuUtilization": evidence.gpu_utilization,
        "lag": evidence.lag,
        "lagTrend": evidence.lag_trend,
        "consumeRate": evidence.consume_rate,
        "timeToDrainSeconds": evidence.time_to_drain,
        "drainGrowthSecondsPerMinute": evidence.drain_growth,
        "dbWriteP95Seconds": evidence.db_write_p95,
        "dbWriteP95BaselineSeconds": evidence.db_write_p95_baseline,
        "apiP95Seconds": evidence.api_p95,
        "apiP95BaselineSeconds": evidence.api_p95_baseline,
        "syncTimeoutsPerSecond": evidence.sync_timeouts,
        "replicaCap": cap,
        **_cap_changed(e),
        "advice": _advice(e),
        "evaluatedAt": timestamp(e.now),
        "verdict": e.decision.verdict.value,
        "message": e.decision.message[:_MAX_MESSAGE],
        "problems": {s.value: e.problems.get(s) for s in Signal},
        "window": _window_patch(window),
        "consumedApproval": e.plan.consumed_approval.value if e.plan.consumed_approval else None,
        "ignoredApproval": e.ignored_approval,
    }


def _cap_changed(e: Evaluation) -> Body:
    if e.cap.action in (CapAction.SET, CapAction.RELEASE):
        return {"replicaCapChangedAt": timestamp(e.now)}
    return {}


def _signals(decision: Decision) -> list[Body]:
    return [r.model_dump(mode="json", by_alias=True) for r in signal_readings(decision.readings)]


def _advice(e: Evaluation) -> list[Body]:
    """Advice in force: rules only a person can act on, and a cap the policy does not apply."""
    out: list[Body] = [
        {"rule": d.rule.value if d.rule else "", "message": _ADVICE.get(d.rule, "") + d.message,
         "since": timestamp(d.since) if d.since else None, "signals": _signals(d)}
        for d in e.advice
    ]  # fmt: skip
    if e.cap.action is CapAction.RECOMMEND and e.cap.decision is not None:
        d = e.cap.decision
        since = timestamp(d.since) if d.since else None
        out.append({"rule": RuleName.BACK_PRESSURE.value, "message": e.cap.message,
                    "since": since, "signals": _signals(d)})  # fmt: skip
    for item in out:
        item["message"] = item["message"][:_MAX_MESSAGE]
    return out


_ADVICE: dict[RuleName | None, str] = {
    RuleName.SYNC_TIMEOUTS: "move clients of the synchronous endpoint to the asynchronous "
    "API (submit the job, then poll or subscribe): no mode shortens a synchronous wait. ",
}


# A merge patch merges maps key by key: keys that must disappear are sent as null.


def _every_signal(values: dict[str, Any]) -> dict[str, Any]:
    return {key: values.get(key) for key in EVIDENCE_KEYS}


def _window_patch(window: AdvisorWindow) -> Body:
    data = window.model_dump(mode="json", by_alias=True)  # None kept: removes stale values
    streaks = data.get("streaks") or {}
    data["streaks"] = {rule.value: streaks.get(rule.value) for rule in RuleName}
    held = data.get("held") or {}
    data["held"] = {check.value: held.get(check.value) for check in Check}
    return data


def _recommendation(e: Evaluation) -> Body | None:
    mode = e.plan.recommendation
    if mode is None:
        return None
    evidence = _every_signal(e.decision.evidence.numbers() if e.decision.evidence else {})
    since = timestamp(e.decision.since) if e.decision.since else timestamp(e.now)
    rule = e.decision.rule.value if e.decision.rule else None
    return {"mode": mode.value, "reason": e.decision.message[:_MAX_MESSAGE],
            "evidence": evidence, "since": since, "rule": rule,
            "signals": _signals(e.decision)}  # fmt: skip


def _available(e: Evaluation) -> tuple[ConditionStatus, AdvisorReason, str]:
    if e.unavailable_reason is not None:
        return ConditionStatus.FALSE, e.unavailable_reason, e.decision.message
    if e.decision.verdict is Verdict.UNAVAILABLE:
        detail = "; ".join(f"{s.value}: {why}" for s, why in e.problems.items())
        return (
            ConditionStatus.FALSE,
            AdvisorReason.METRICS_UNAVAILABLE,
            detail or e.decision.message,
        )
    return ConditionStatus.TRUE, AdvisorReason.METRICS_AVAILABLE, "all signals read"


_VERDICT_REASONS = {
    Verdict.UNAVAILABLE: AdvisorReason.METRICS_UNAVAILABLE,
    Verdict.STEADY: AdvisorReason.STEADY,
    Verdict.PENDING: AdvisorReason.PENDING,
    Verdict.COOLDOWN: AdvisorReason.COOLDOWN,
    Verdict.RECOMMEND: AdvisorReason.TRANSITION_RECOMMENDED,
}


def _recommended(e: Evaluation) -> tuple[ConditionStatus, str, str]:
    action, decision = e.plan.action, e.decision
    if action is Action.RECOMMEND:
        return ConditionStatus.TRUE, str(decision.rule), decision.message
    if action is Action.PINNED:
        return (
            ConditionStatus.TRUE,
            AdvisorReason.PINNED,
            f"pinned, not applied: {decision.message}",
        )
    if action is Action.DEFERRED:
        return (ConditionStatus.TRUE, AdvisorReason.WAITING_FOR_ROLLOUT,
                f"due once the current rollout settles: {decision.message}")  # fmt: skip
    if action is Action.APPLY:
        return ConditionStatus.FALSE, AdvisorReason.TRANSITION_APPLIED, decision.message
    if decision.verdict is Verdict.RECOMMEND:  # only Manual reaches here with a target
        return ConditionStatus.FALSE, AdvisorReason.MANUAL_POLICY, decision.message
    return ConditionStatus.FALSE, _VERDICT_REASONS[decision.verdict], decision.message


def _conditions(e: Evaluation, previous: Body, generation: int | None) -> list[Body]:
    now = timestamp(e.now)
    existing = [dict(c) for c in previous.get("conditions") or [] if isinstance(c, dict)]
    updates = [(ConditionType.ADVISOR_AVAILABLE, *_available(e)),
               (ConditionType.TRANSITION_RECOMMENDED, *_recommended(e))]  # fmt: skip
    by_type = {c.get("type"): c for c in existing}
    for kind, status, reason, message in updates:
        before = by_type.get(kind.value) or {}
        changed = before.get("status") != status.value
        by_type[kind.value] = {
            "type": kind.value,
            "status": status.value,
            "reason": str(reason),
            "message": message[:_MAX_MESSAGE],
            "lastTransitionTime": now if changed else before.get("lastTransitionTime", now),
            "observedGeneration": generation,
        }
    # Keep the operator's order first; the advisor's conditions follow.
    return [c for c in existing if c.get("type") not in _OURS] + [by_type[t] for t in _OURS]


_OURS = (ConditionType.ADVISOR_AVAILABLE.value, ConditionType.TRANSITION_RECOMMENDED.value)


def _events(e: Evaluation, previous: Body) -> list[Event]:
    events: list[Event] = []
    before = {c.get("type"): c for c in previous.get("conditions") or [] if isinstance(c, dict)}
    status, reason, message = _available(e)
    was = (before.get(ConditionType.ADVISOR_AVAILABLE.value) or {}).get("status")
    # Under Manual nothing depends on the advisor: the condition reports it, without Events.
    if e.policy is not Policy.MANUAL:
        if status is ConditionStatus.FALSE and was != ConditionStatus.FALSE.value:
            events.append(Event(True, reason, f"advisor unavailable, mode kept: {message}"))
        elif status is ConditionStatus.TRUE and was == ConditionStatus.FALSE.value:
            events.append(Event(False, reason, "advisor reads all signals again"))
    recommended = e.plan.recommendation
    previous_mode = ((previous.get("recommendation") or {}) or {}).get("mode")
    if recommended is not None and recommended.value != previous_mode:
        kind = (
            AdvisorReason.PINNED
            if e.plan.action is Action.PINNED
            else (AdvisorReason.TRANSITION_RECOMMENDED)
        )
        events.append(
            Event(
                False, kind, f"{e.decision.mode.value} -> {recommended.value}: {e.decision.message}"
            )
        )
    if e.plan.action is Action.APPLY and e.decision.target is not None:
        events.append(
            Event(
                False,
                AdvisorReason.TRANSITION_APPLIED,
                f"{e.decision.mode.value} -> {e.decision.target.value}: {e.decision.message}",
            )
        )
    events += _cap_events(e, previous) + _advice_events(e, previous)
    ignored_before = (previous.get("advisor") or {}).get("ignoredApproval")
    if e.ignored_approval is not None and e.ignored_approval != ignored_before:
        events.append(
            Event(
                True,
                AdvisorReason.INVALID_APPROVAL,
                f"approve-transition value {e.ignored_approval!r} names no mode "
                f"(Standard, Batched or Writer): ignored",
            )
        )
    return events


def _cap_events(e: Evaluation, previous: Body) -> list[Event]:
    action = e.cap.action
    if action is CapAction.SET:
        return [Event(False, AdvisorReason.REPLICA_CAP_APPLIED, e.cap.message[:_MAX_MESSAGE])]
    if action is CapAction.RELEASE:
        return [Event(False, AdvisorReason.REPLICA_CAP_RELEASED, e.cap.message[:_MAX_MESSAGE])]
    if action is CapAction.RECOMMEND and RuleName.BACK_PRESSURE.value not in _advised(previous):
        return [Event(False, AdvisorReason.REPLICA_CAP_RECOMMENDED, e.cap.message[:_MAX_MESSAGE])]
    return []


def _advice_events(e: Evaluation, previous: Body) -> list[Event]:
    before = _advised(previous)
    return [
        Event(
            True,
            AdvisorReason.ASYNC_CLIENTS_RECOMMENDED,
            (_ADVICE.get(d.rule, "") + d.message)[:_MAX_MESSAGE],
        )
        for d in e.advice
        if d.rule is not None and d.rule.value not in before
    ]


def _advised(previous: Body) -> set[str]:
    items = (previous.get("advisor") or {}).get("advice") or []
    return {str(item.get("rule")) for item in items if isinstance(item, dict)}
