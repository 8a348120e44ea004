"""The one level-based reconcile: observe, plan, ensure topics, render, apply, prune, status.

Called by kopf's create/update/resume handlers and timer, and by the advisor after it
changed `status.activeMode`. Idempotent: running it twice in a row changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ocr_operator.apply import Body, KubeClient, KubeError, Owner
from ocr_operator.conditions import ConditionUpdate, merge_conditions, true_if
from ocr_operator.model import (
    Component,
    ConditionStatus,
    ConditionType,
    Mode,
    OCRServingSpec,
    OCRServingStatus,
    Reason,
    resolve_active_mode,
)
from ocr_operator.observe import observe
from ocr_operator.render import (
    LABEL_COMPONENT,
    Instance,
    Kind,
    Manifest,
    Phase,
    Plan,
    instance_labels,
    plan_transition,
    render,
)
from ocr_operator.settings import OperatorSettings
from ocr_operator.topics_step import TopicsOutcome, ensure_topics_step


@dataclass
class ReconcileContext:
    """Long-lived dependencies of reconcile (one per operator process)."""

    kube: KubeClient
    settings: OperatorSettings
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, uid: str) -> asyncio.Lock:
        """Serialises reconciles (and advisor status writes) of one resource."""
        return self.locks.setdefault(uid, asyncio.Lock())


@dataclass(frozen=True)
class ReconcileOutcome:
    """What happened; `retry_after` is set while waiting or after a temporary failure."""

    active_mode: Mode | None
    phase: Phase | None
    ready: bool
    retry_after: float | None
    message: str


class _FailureError(Exception):
    def __init__(self, reason: Reason, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile(ctx: ReconcileContext, namespace: str, name: str) -> ReconcileOutcome:
    """Reconcile one OCRServing from its current state in the apiserver."""
    body = await ctx.kube.get_own(namespace, name)
    if body is None:
        return ReconcileOutcome(None, None, False, None, "resource is gone")
    owner = Owner(name, namespace, body["metadata"]["uid"])
    async with ctx.lock(owner.uid):
        # Read again under the lock: the advisor may have moved status.activeMode meanwhile.
        body = await ctx.kube.get_own(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return ReconcileOutcome(None, None, False, None, "resource is gone")
        return await _reconcile(ctx, owner, body)


async def _reconcile(ctx: ReconcileContext, owner: Owner, body: Body) -> ReconcileOutcome:
    generation = body["metadata"].get("generation")
    raw_status: Body = body.get("status") or {}
    try:
        spec = OCRServingSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        message = f"invalid spec: {_first_errors(error)}"
        await _write_failure(
            ctx,
            owner,
            raw_status=raw_status,
            generation=generation,
            reason=Reason.INVALID_SPEC,
            message=message,
        )
        return ReconcileOutcome(None, None, False, None, message)
    status = _parse_status(raw_status)
    if spec.paused:
        await _write_paused(ctx, owner, raw_status=raw_status, generation=generation)
        return ReconcileOutcome(status.active_mode, None, False, None, "paused")
    target = resolve_active_mode(spec, status)
    try:
        return await _converge(ctx, owner, body, spec, target)
    except _FailureError as failure:
        await _write_failure(
            ctx,
            owner,
            raw_status=raw_status,
            generation=generation,
            reason=failure.reason,
            message=failure.message,
        )
        return ReconcileOutcome(target, None, False, failure.retry_after, failure.message)


async def _converge(
    ctx: ReconcileContext, owner: Owner, body: Body, spec: OCRServingSpec, target: Mode
) -> ReconcileOutcome:
    raw_status: Body = body.get("status") or {}
    generation = body["metadata"].get("generation")
    instance = Instance(owner.name, owner.namespace)
    bootstrap = ctx.settings.kafka_bootstrap or spec.kafka.bootstrap_servers
    observed = await observe(ctx.kube, bootstrap, spec, instance, target)
    plan = plan_transition(target, observed)
    topics = await ensure_topics_step(
        ctx.kube, settings=ctx.settings, spec=spec, instance=instance, plan=plan, owner=owner
    )
    if topics.failure is not None:
        raise _FailureError(
            topics.failure.reason, topics.failure.message, ctx.settings.error_backoff_seconds
        )
    manifests = render(spec, instance, plan)
    applied = await _apply_all(ctx, owner, manifests)
    await _prune(ctx, owner, instance, {m.key for m in manifests})
    components = _components(applied, plan)
    all_ready = all(c["ready"] >= c["desired"] for c in components.values() if c)
    ready = all_ready and plan.phase is Phase.STEADY
    message = _progress_message(plan, all_ready)
    fields = {
        "observedGeneration": generation,
        "activeMode": target.value,
        "specMode": spec.architecture.mode.value,
        "components": components,
    }
    await _write(
        ctx,
        owner,
        raw_status=raw_status,
        fields=fields,
        generation=generation,
        updates=_conditions(plan, ready, topics, message),
    )
    await _announce(ctx, owner, raw_status, target, plan)
    retry = None if ready else ctx.settings.wait_seconds
    return ReconcileOutcome(target, plan.phase, ready, retry, message)


async def _apply_all(
    ctx: ReconcileContext, owner: Owner, manifests: list[Manifest]
) -> dict[tuple[Kind, str], Body]:
    applied: dict[tuple[Kind, str], Body] = {}
    for manifest in manifests:
        if manifest.kind is Kind.KAFKA_TOPIC:
            continue  # applied by the topics step
        try:
            applied[manifest.key] = await ctx.kube.apply(manifest, owner)
        except KubeError as error:
            delay = ctx.settings.error_backoff_seconds
            raise _FailureError(
                Reason.APPLY_FAILED,
                f"apply {manifest.kind.value}/{manifest.name}: {error.message}",
                delay if error.temporary else delay * 4,
            ) from error
    return applied


async def _prune(
    ctx: ReconcileContext,
    owner: Owner,
    instance: Instance,
    desired: set[tuple[Kind, str]],
) -> None:
    """Delete children of this instance that the active mode does not use.

    KafkaTopics are never pruned: deleting one makes Strimzi delete the topic's data."""
    kinds = [k for k in Kind if k is not Kind.KAFKA_TOPIC]
    for kind in kinds:
        try:
            children = await ctx.kube.list(kind, instance.namespace, instance_labels(instance))
            for child in children:
                meta = child["metadata"]
                owned = any(r.get("uid") == owner.uid for r in meta.get("ownerReferences") or [])
                if owned and (kind, meta["name"]) not in desired:
                    await ctx.kube.delete(kind, instance.namespace, meta["name"])
        except KubeError as error:
            raise _FailureError(
                Reason.APPLY_FAILED,
                f"prune {kind.value}: {error.message}",
                ctx.settings.error_backoff_seconds,
            ) from error


def _components(applied: dict[tuple[Kind, str], Body], plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {c.value: None for c in Component}
    for (kind, _), deployment in applied.items():
        if kind is not Kind.DEPLOYMENT:
            continue
        component = deployment["metadata"]["labels"][LABEL_COMPONENT]
        status = deployment.get("status") or {}
        desired = (deployment.get("spec") or {}).get("replicas", 1)
        out[component] = {"desired": desired, "ready": status.get("readyReplicas", 0)}
    if not plan.include_writer:
        out[Component.WRITER.value] = None
    return out


def _progress_message(plan: Plan, all_ready: bool) -> str:
    messages = {
        Phase.WAITING_FOR_WRITER: "waiting for the writer to be Ready before workers publish "
        "results",
        Phase.WAITING_FOR_WORKERS: "waiting for workers to stop publishing results",
        Phase.DRAINING_RESULTS: "waiting for the writer group to drain the results topic",
    }
    if plan.phase in messages:
        return messages[plan.phase]
    return f"{plan.target.value} mode applied" if all_ready else "waiting for pods to be ready"


def _conditions(
    plan: Plan, ready: bool, topics: TopicsOutcome, message: str
) -> list[ConditionUpdate]:
    waiting = plan.phase.reason if plan.phase is not Phase.STEADY else (Reason.COMPONENTS_NOT_READY)
    degraded = topics.not_supported is not None
    return [
        ConditionUpdate(
            ConditionType.READY, true_if(ready), Reason.RECONCILED if ready else waiting, message
        ),
        ConditionUpdate(
            ConditionType.PROGRESSING,
            true_if(not ready),
            waiting if not ready else Reason.RECONCILED,
            message,
        ),
        ConditionUpdate(
            ConditionType.DEGRADED,
            true_if(degraded),
            Reason.NOT_SUPPORTED if degraded else Reason.AS_EXPECTED,
            topics.not_supported or "",
        ),
        ConditionUpdate(
            ConditionType.TOPICS_READY,
            true_if(not degraded),
            topics.reason,
            topics.not_supported or topics.message,
        ),
    ]


async def _write(
    ctx: ReconcileContext,
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
    try:
        await ctx.kube.patch_status(
            owner.namespace, owner.name, {**fields, "conditions": conditions}
        )
    except KubeError as error:
        if error.status != 404:  # deleted meanwhile: nothing to report on
            raise


async def _write_paused(
    ctx: ReconcileContext, owner: Owner, *, raw_status: Body, generation: int | None
) -> None:
    paused = ConditionUpdate(
        ConditionType.PROGRESSING,
        ConditionStatus.FALSE,
        Reason.PAUSED,
        "spec.paused is true: children are left as is",
    )
    await _write(
        ctx,
        owner,
        raw_status=raw_status,
        fields={"observedGeneration": generation},
        updates=[paused],
        generation=generation,
    )


async def _write_failure(
    ctx: ReconcileContext,
    owner: Owner,
    *,
    raw_status: Body,
    generation: int | None,
    reason: Reason,
    message: str,
) -> None:
    await _write(
        ctx,
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
        await _event(ctx, owner, True, reason.value, message)


async def _announce(
    ctx: ReconcileContext, owner: Owner, raw_status: Body, target: Mode, plan: Plan
) -> None:
    """Events on changes only (not on every resync)."""
    before = raw_status.get("activeMode")
    if before != target.value:
        await _event(
            ctx,
            owner,
            False,
            "ModeChanged",
            f"active mode {before} -> {target.value}" if before else f"active mode {target.value}",
        )
    previous = {c.get("type"): c for c in raw_status.get("conditions") or []}
    old_reason = previous.get(ConditionType.PROGRESSING.value, {}).get("reason")
    if plan.phase is not Phase.STEADY and old_reason != plan.phase.reason.value:
        await _event(ctx, owner, False, plan.phase.reason.value, _progress_message(plan, False))


async def _event(
    ctx: ReconcileContext, owner: Owner, warning: bool, reason: str, message: str
) -> None:
    with contextlib.suppress(KubeError):  # events are best effort
        await ctx.kube.event(owner, warning, reason, message)


def _parse_status(raw: Body) -> OCRServingStatus:
    try:
        return OCRServingStatus.model_validate(raw)
    except ValidationError:
        # Keep going with what matters; an unreadable status must not block reconciling.
        keep = {k: raw[k] for k in ("activeMode", "specMode") if k in raw}
        try:
            return OCRServingStatus.model_validate(keep)
        except ValidationError:
            return OCRServingStatus()


def _first_errors(error: ValidationError, limit: int = 3) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:limit]]
    return "; ".join(parts)
