"""What the operator does with a decision, given the policy, the pin and an approval.

Pure code like `rules`: the kopf handler turns the returned `Plan` into status patches,
Events and the change of `status.activeMode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ocr_operator.advisor.rules import Decision, Verdict
from ocr_operator.model.enums import Mode, Policy

APPROVE_ANNOTATION = "ocrserving.io/approve-transition"
PIN_ANNOTATION = "ocrserving.io/pin-mode"
_PIN_OFF = frozenset({"", "false", "no", "0", "off"})


class Action(StrEnum):
    """The advisor's move this evaluation."""

    REPORT = "Report"  # evidence only: nothing recommended
    RECOMMEND = "Recommend"  # publish the recommendation, wait for an approval
    APPLY = "Apply"  # change status.activeMode to the target
    PINNED = "Pinned"  # a move would be made, but the pin annotation keeps the mode
    DEFERRED = "Deferred"  # a move is due, but the stack is still changing: next evaluation


@dataclass(frozen=True)
class Approval:
    """The approve-transition annotation as read from the resource."""

    mode: Mode | None  # None: absent
    invalid: str | None = None  # a value that names no mode (reported, otherwise ignored)

    @classmethod
    def parse(cls, annotations: dict[str, str]) -> Approval:
        raw = annotations.get(APPROVE_ANNOTATION)
        if raw is None or not raw.strip():
            return cls(mode=None)
        try:
            return cls(mode=Mode(raw.strip()))
        except ValueError:
            return cls(mode=None, invalid=raw[:64])


def is_pinned(annotations: dict[str, str]) -> bool:
    """`ocrserving.io/pin-mode: "true"` pauses the advisor's moves (any value but false)."""
    raw = annotations.get(PIN_ANNOTATION)
    return raw is not None and raw.strip().lower() not in _PIN_OFF


@dataclass(frozen=True)
class Plan:
    action: Action
    recommendation: Mode | None  # what status.recommendation shows (None: cleared)
    consumed_approval: Mode | None  # the approval already used, persisted in status.advisor


def plan(
    decision: Decision,
    policy: Policy,
    *,
    pinned: bool,
    approval: Approval,
    consumed_approval: Mode | None,
    settled: bool = True,
) -> Plan:
    """Decide the action. `settled` is False while the operator is still rolling out a mode
    (or has not yet applied a user's edit of it): a due move then waits, so the advisor never
    starts a transition in the middle of another.

    An approval counts once: after it moved the stack it is remembered as consumed, and stays
    consumed while the annotation keeps that value, so a stale annotation cannot approve a
    later recommendation of the same mode. Removing or changing the annotation re-arms it.
    """
    consumed = consumed_approval if approval.mode == consumed_approval else None
    target = decision.target if decision.verdict is Verdict.RECOMMEND else None
    if policy is Policy.MANUAL or target is None:
        return Plan(Action.REPORT, None, consumed)
    if pinned:
        return Plan(Action.PINNED, target, consumed)
    approved = approval.mode is target and consumed is not target
    if policy is Policy.RECOMMEND and not approved:
        return Plan(Action.RECOMMEND, target, consumed)
    if not settled:
        return Plan(Action.DEFERRED, target, consumed)
    return Plan(Action.APPLY, None, target if policy is Policy.RECOMMEND else consumed)
