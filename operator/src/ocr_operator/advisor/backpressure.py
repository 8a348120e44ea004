"""Back-pressure: cap the autoscaler of the database's client while the database is the
bottleneck, release the cap when it recovers (pure).

A lag-based autoscaler reads a growing backlog as "too few consumers" and adds replicas; when
the database is what holds the stack back, every new consumer adds concurrent writes to it,
and its latency (and with lock contention its throughput) gets worse. The cap is written to
`status.advisor.replicaCap`, never to `spec`; the operator renders the HPA's maxReplicas with
it. It is set and released with the same windows, minimum samples and cooldown as a mode
change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from ocr_operator.advisor.rules import (
    RULES_BY_NAME,
    AdvisorWindow,
    Decision,
    RuleName,
    Verdict,
    judge,
    signal_readings,
)
from ocr_operator.model.advisor import ReplicaCap
from ocr_operator.model.enums import Component, Mode
from ocr_operator.model.scaling import LagAutoscaling
from ocr_operator.model.spec import OCRServingSpec

# Who writes the results to the database in each mode.
DATABASE_CLIENT = {
    Mode.STANDARD: Component.WORKER,
    Mode.BATCHED: Component.WORKER,
    Mode.WRITER: Component.WRITER,
}


class CapAction(StrEnum):
    KEEP = "Keep"  # nothing changes
    SET = "Set"  # cap the autoscaler now
    RELEASE = "Release"  # lift the cap now
    RECOMMEND = "Recommend"  # a cap is due but the policy does not apply it: advice only


@dataclass(frozen=True)
class CapPlan:
    action: CapAction
    cap: ReplicaCap | None  # the cap in force after this evaluation
    message: str = ""
    decision: Decision | None = None  # the rule behind a set, release or recommendation


@dataclass(frozen=True)
class CapState:
    """What status says about the cap (status.advisor.replicaCap and replicaCapChangedAt)."""

    cap: ReplicaCap | None = None
    changed_at: datetime | None = None

    @classmethod
    def parse(cls, advisor_status: dict[str, Any]) -> CapState:
        try:
            raw = advisor_status.get("replicaCap")
            cap = ReplicaCap.model_validate(raw) if raw else None
        except ValidationError:
            cap = None
        changed = advisor_status.get("replicaCapChangedAt")
        try:
            at = datetime.fromisoformat(str(changed).replace("Z", "+00:00")) if changed else None
        except ValueError:
            at = None
        return cls(cap=cap, changed_at=at)


def replica_caps(raw_status: dict[str, Any]) -> dict[Component, int]:
    """The caps in force, for rendering the autoscalers (component -> maxReplicas)."""
    state = CapState.parse(raw_status.get("advisor") or {})
    if state.cap is None:
        return {}
    return {Component(state.cap.component): state.cap.max_replicas}


def plan_cap(
    window: AdvisorWindow,
    now: datetime,
    spec: OCRServingSpec,
    state: CapState,
    replicas: dict[Component, int],
    *,
    apply: bool,
) -> CapPlan:
    """Set, keep or release the cap. `replicas`: the current replicas per component (from
    status.components); `apply` is False when the policy only recommends."""
    mode, cap = window.mode, state.cap
    if mode is None or window.latest is None:
        return CapPlan(CapAction.KEEP, cap)
    client = DATABASE_CLIENT[mode]
    scaling = spec.worker.autoscaling if client is Component.WORKER else spec.writer.autoscaling
    if cap is not None and (cap.component != client.value or not scaling.enabled or not apply):
        why = (
            f"the {cap.component} no longer writes to the database in {mode.value} mode"
            if cap.component != client.value
            else "autoscaling is off or the policy no longer applies caps"
        )
        return CapPlan(CapAction.RELEASE, None, f"cap on the {cap.component} released: {why}")
    if not scaling.enabled:
        return CapPlan(CapAction.KEEP, None)
    cooldown_end = state.changed_at + timedelta(seconds=spec.advisor.cooldown_seconds) if (
        state.changed_at is not None) else None  # fmt: skip
    if cap is not None:
        return _maybe_release(window, now, spec, cap, cooldown_end)
    return _maybe_set(
        window,
        now,
        spec,
        client=client,
        scaling=scaling,
        replicas=replicas,
        cooldown_end=cooldown_end,
        apply=apply,
    )


def _maybe_release(
    window: AdvisorWindow,
    now: datetime,
    spec: OCRServingSpec,
    cap: ReplicaCap,
    cooldown_end: datetime | None,
) -> CapPlan:
    rule = RULES_BY_NAME[RuleName.BACK_PRESSURE_RELIEVED]
    decision = judge(rule, window, now, spec.advisor, cooldown_end)
    if decision is None or decision.verdict is not Verdict.RECOMMEND:
        return CapPlan(CapAction.KEEP, cap, decision=decision)
    message = f"cap of {cap.max_replicas} {cap.component} replicas released: {decision.message}"
    return CapPlan(CapAction.RELEASE, None, message, decision)


def _maybe_set(
    window: AdvisorWindow,
    now: datetime,
    spec: OCRServingSpec,
    *,
    client: Component,
    scaling: LagAutoscaling,
    replicas: dict[Component, int],
    cooldown_end: datetime | None,
    apply: bool,
) -> CapPlan:
    rule = RULES_BY_NAME[RuleName.BACK_PRESSURE]
    decision = judge(rule, window, now, spec.advisor, cooldown_end)
    if decision is None or decision.verdict is not Verdict.RECOMMEND:
        return CapPlan(CapAction.KEEP, None, decision=decision)
    current = replicas.get(client, scaling.min_replicas)
    limit = max(scaling.min_replicas, min(current, scaling.max_replicas))
    if limit >= scaling.max_replicas:
        return CapPlan(CapAction.KEEP, None, decision=decision)  # a cap would change nothing
    message = (
        f"cap the {client.value} autoscaler at {limit} replicas (spec allows "
        f"{scaling.max_replicas}): {decision.message}"
    )
    if not apply:
        return CapPlan(CapAction.RECOMMEND, None, message, decision)
    cap = ReplicaCap(
        component=client.value,
        max_replicas=limit,
        rule=rule.name.value,
        since=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        reason=message[:1024],
        signals=signal_readings(decision.readings),
    )
    return CapPlan(CapAction.SET, cap, message, decision)
