"""Kubernetes-style conditions: pure helpers that keep lastTransitionTime stable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ocr_operator.model import ConditionStatus, ConditionType, Reason


@dataclass(frozen=True)
class ConditionUpdate:
    type: ConditionType
    status: ConditionStatus
    reason: Reason
    message: str = ""


def merge_conditions(
    existing: list[dict[str, Any]],
    updates: list[ConditionUpdate],
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """Existing conditions with `updates` applied; others (the advisor's) are kept as they are.

    lastTransitionTime changes only when a condition's status changes."""
    by_type = {c.get("type"): dict(c) for c in existing if isinstance(c, dict)}
    for update in updates:
        previous = by_type.get(update.type.value)
        changed = previous is None or previous.get("status") != update.status.value
        by_type[update.type.value] = {
            "type": update.type.value,
            "status": update.status.value,
            "reason": update.reason.value,
            "message": update.message[:1024],
            "lastTransitionTime": now
            if changed or previous is None
            else previous.get("lastTransitionTime", now),
        }
        if generation is not None:
            by_type[update.type.value]["observedGeneration"] = generation
    order = [t.value for t in ConditionType]
    return sorted(
        by_type.values(), key=lambda c: order.index(c["type"]) if c["type"] in order else len(order)
    )


def true_if(flag: bool) -> ConditionStatus:
    return ConditionStatus.TRUE if flag else ConditionStatus.FALSE


def progressing_blocks_advisor(conditions: list[dict[str, Any]]) -> bool:
    """True while a migration, a mode transition or a rollout is under way. Replicas that an
    autoscaler added and that are still starting (reason ScalingReplicas) do not count: the
    stack runs its current template, and load is exactly when the advisor must act."""
    for item in conditions:
        if isinstance(item, dict) and item.get("type") == ConditionType.PROGRESSING.value:
            return bool(
                item.get("status") == ConditionStatus.TRUE.value
                and item.get("reason") != Reason.SCALING_REPLICAS.value
            )
    return False


def has_been_ready(body: Mapping[str, Any]) -> bool:
    """Whether the stack serves, or has served since its last change of mode: Ready is
    True, or the advisor reported on it before (an operator restart, a transition)."""
    status = body.get("status") or {}
    if status.get("advisor"):
        return True
    return any(
        c.get("type") == ConditionType.READY.value and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
