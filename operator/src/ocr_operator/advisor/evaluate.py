"""One evaluation from what the resource says (spec, status, annotations) and what Prometheus
said (pure): the kopf daemon and the simulator run exactly this, then `build_report`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ocr_operator.advisor.backpressure import CapAction, CapPlan, CapState, plan_cap
from ocr_operator.advisor.evidence import Evidence, Observation
from ocr_operator.advisor.policy import Action, Approval, is_pinned, plan
from ocr_operator.advisor.report import AdvisorReason, Evaluation
from ocr_operator.advisor.rules import (
    AdvisorWindow,
    Decision,
    Effect,
    Verdict,
    decide,
    judge,
    observe,
    rules_from,
)
from ocr_operator.conditions import progressing_blocks_advisor
from ocr_operator.model import (
    Component,
    Mode,
    OCRServingSpec,
    OCRServingStatus,
    Policy,
    resolve_active_mode,
)

Body = dict[str, Any]
NO_PROMETHEUS = (
    "no Prometheus address: set spec.advisor.prometheusUrl or the operator's "
    "OCR_OPERATOR_PROMETHEUS_URL"
)


def evaluate(
    spec: OCRServingSpec,
    raw_status: Body,
    meta: Body,
    now: datetime,
    observation: Observation | None,
) -> Evaluation:
    """Fold the observation into the persisted window and decide mode, cap and advice."""
    status = _status(raw_status)
    advisor_status: Body = raw_status.get("advisor") or {}
    mode = resolve_active_mode(spec, status)
    evidence = observation.evidence if observation else Evidence(at=now)
    window = observe(_window(advisor_status), mode, evidence, spec.advisor)
    decision = decide(window, now, spec.advisor)
    unavailable = None
    if observation is None:
        unavailable = AdvisorReason.PROMETHEUS_NOT_CONFIGURED
        decision = Decision(Verdict.UNAVAILABLE, mode, NO_PROMETHEUS)
    annotations: dict[str, str] = dict(meta.get("annotations") or {})
    approval = Approval.parse(annotations)
    policy = spec.architecture.policy
    the_plan = plan(
        decision,
        policy,
        pinned=is_pinned(annotations),
        approval=approval,
        consumed_approval=_mode(advisor_status.get("consumedApproval")),
        settled=_settled(spec, status, raw_status),
    )
    cap = plan_cap(
        window,
        now,
        spec,
        CapState.parse(advisor_status),
        _replicas(raw_status),
        apply=policy is Policy.AUTO,
    )
    if the_plan.action is Action.APPLY and cap.action is CapAction.SET:
        # The move changes who writes to the database; the next evaluation judges the cap
        # in the new mode (with its own window), instead of capping the outgoing clients.
        cap = CapPlan(CapAction.KEEP, None)
    return Evaluation(
        now=now,
        evidence=evidence,
        problems=dict(observation.problems) if observation else {},
        window=window,
        decision=decision,
        plan=the_plan,
        policy=policy,
        unavailable_reason=unavailable,
        ignored_approval=approval.invalid,
        cap=cap,
        advice=_advice(window, now, spec),
    )


def _advice(window: AdvisorWindow, now: datetime, spec: OCRServingSpec) -> tuple[Decision, ...]:
    if window.mode is None:
        return ()
    rules = rules_from(window.mode, Effect.ADVISE)
    decisions = (judge(rule, window, now, spec.advisor, None) for rule in rules)
    return tuple(d for d in decisions if d is not None and d.verdict is Verdict.RECOMMEND)


def _replicas(raw_status: Body) -> dict[Component, int]:
    components = raw_status.get("components") or {}
    out: dict[Component, int] = {}
    for component in (Component.WORKER, Component.WRITER):
        entry = components.get(component.value) or {}
        desired = entry.get("desired") if isinstance(entry, dict) else None
        if isinstance(desired, int):
            out[component] = desired
    return out


def _settled(spec: OCRServingSpec, status: OCRServingStatus, raw_status: Body) -> bool:
    """The operator applied the current spec mode (a user's edit of it wins over the advisor)
    and is not in the middle of a rollout or a mode transition (replicas an autoscaler added
    that are still starting do not count: load is when the advisor must act)."""
    if status.spec_mode != spec.architecture.mode or status.active_mode is None:
        return False
    return not progressing_blocks_advisor(list(raw_status.get("conditions") or []))


def _status(raw: Body) -> OCRServingStatus:
    keep = {k: raw[k] for k in ("activeMode", "specMode") if k in raw}
    try:
        return OCRServingStatus.model_validate(keep)
    except ValidationError:
        return OCRServingStatus()


def _window(advisor_status: Body) -> AdvisorWindow:
    """The persisted window; an unreadable one starts over (streaks and cooldown restart)."""
    try:
        return AdvisorWindow.model_validate(advisor_status.get("window") or {})
    except ValidationError:
        return AdvisorWindow()


def _mode(raw: object) -> Mode | None:
    try:
        return Mode(str(raw)) if raw else None
    except ValueError:
        return None
