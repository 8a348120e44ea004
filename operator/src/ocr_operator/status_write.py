"""Status writes of reconcile: conditions merged into the status subresource, and Events
on changes only (never on every resync)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from ocr_operator.conditions import ConditionUpdate, merge_conditions
from ocr_operator.model import ConditionStatus, ConditionType, Mode, Reason
from ocr_operator.ports import Body, KubeApi, KubeError, Owner
from ocr_operator.render import Phase, Plan
from ocr_operator.verdict import Verdict


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def write(
    kube: KubeApi,
    owner: Owner,
    *,
    raw_status: Body,
    fields: Body,
    updates: list[ConditionUpdate],
    generation: int | None,
) -> None:
    conditions = merge_conditions(
        list(raw_status.get("conditions") or []), updates, generation, _now()
    )
    patch = {**fields, "conditions": conditions}
    if not changes(raw_status, patch):
        return  # most passes of a converged stack: a write would only cost the apiserver
    try:
        await kube.patch_status(owner.namespace, owner.name, patch)
    except KubeError as error:
        if error.status != 404:  # deleted meanwhile: nothing to report on
            raise


def changes(current: Body, patch: Body) -> bool:
    """Whether a JSON merge patch would change `current` (null deletes a key, objects
    merge key by key, anything else replaces)."""
    return any(_changes_key(current, key, value) for key, value in patch.items())


def _changes_key(current: Body, key: str, value: object) -> bool:
    if value is None:
        return current.get(key) is not None
    old = current.get(key)
    if isinstance(value, dict) and isinstance(old, dict):
        return changes(old, value)
    return bool(old != value)


async def write_paused(
    kube: KubeApi, owner: Owner, *, raw_status: Body, generation: int | None
) -> None:
    paused = ConditionUpdate(
        ConditionType.PROGRESSING,
        ConditionStatus.FALSE,
        Reason.PAUSED,
        "spec.paused is true: children are left as is",
    )
    await write(
        kube,
        owner,
        raw_status=raw_status,
        fields={"observedGeneration": generation},
        updates=[paused],
        generation=generation,
    )


async def write_failure(
    kube: KubeApi,
    owner: Owner,
    *,
    raw_status: Body,
    generation: int | None,
    reason: Reason,
    message: str,
) -> None:
    await write(
        kube,
        owner,
        raw_status=raw_status,
        fields={"observedGeneration": generation},
        generation=generation,
        updates=[
            ConditionUpdate(ConditionType.READY, ConditionStatus.FALSE, reason, message),
            ConditionUpdate(ConditionType.DEGRADED, ConditionStatus.TRUE, reason, message),
        ],
    )
    previous = {c.get("type"): c for c in raw_status.get("conditions") or []}
    if previous.get(ConditionType.DEGRADED.value, {}).get("reason") != reason.value:
        await _event(kube, owner, True, reason.value, message)


async def announce(
    kube: KubeApi,
    owner: Owner,
    *,
    raw_status: Body,
    target: Mode,
    plan: Plan,
    verdict: Verdict,
) -> None:
    """Events on changes only (not on every resync)."""
    before = raw_status.get("activeMode")
    if before != target.value:
        await _event(
            kube,
            owner,
            False,
            "ModeChanged",
            f"active mode {before} -> {target.value}" if before else f"active mode {target.value}",
        )
    previous = {c.get("type"): c for c in raw_status.get("conditions") or []}
    old_reason = previous.get(ConditionType.PROGRESSING.value, {}).get("reason")
    if plan.phase is not Phase.STEADY and old_reason != plan.phase.reason.value:
        await _event(kube, owner, False, plan.phase.reason.value, verdict.message)
    old_degraded = previous.get(ConditionType.DEGRADED.value, {})
    cause = verdict.degraded
    if cause is not None and old_degraded.get("reason") != cause.reason.value:
        await _event(kube, owner, True, cause.reason.value, cause.message)


async def _event(kube: KubeApi, owner: Owner, warning: bool, reason: str, message: str) -> None:
    with contextlib.suppress(KubeError):  # events are best effort
        await kube.event(owner, warning, reason, message)
