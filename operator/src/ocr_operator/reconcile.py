"""The one level-based reconcile: observe, plan, ensure topics, render, apply, prune, status.

Called by kopf's create/update/resume handlers and timer, and by the advisor after it
changed `status.activeMode`. Idempotent: running it twice in a row changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ocr_operator.advisor.backpressure import replica_caps
from ocr_operator.api_key_step import ensure_api_key
from ocr_operator.children import ReconcileError, apply_all, ensure_created, prune
from ocr_operator.health import MigrationState, migration_state, pod_causes
from ocr_operator.model import (
    Component,
    Mode,
    OCRServingSpec,
    OCRServingStatus,
    Reason,
    resolve_active_mode,
)
from ocr_operator.model.model_source import ResolvedModel
from ocr_operator.model.status import ComponentsStatus
from ocr_operator.model_step import resolve_model
from ocr_operator.observe import component_rollouts, deployments_after_pass, observe
from ocr_operator.ports import (
    Body,
    KubeError,
    ModelRegistryError,
    Owner,
)
from ocr_operator.reconcile_context import ReconcileContext, ReconcileOutcome
from ocr_operator.render import (
    Instance,
    Kind,
    Plan,
    StackDefaults,
    api_url,
    component_image,
    instance_labels,
    migration_image,
    migration_job,
    plan_transition,
    pod_labels,
    render,
    selector_labels,
)
from ocr_operator.status_write import announce, write, write_failure, write_paused
from ocr_operator.topics_step import ensure_topics_step
from ocr_operator.verdict import Seen, condition_updates, judge, retry_after

__all__ = ["ReconcileContext", "ReconcileOutcome", "reconcile"]


async def reconcile(
    ctx: ReconcileContext,
    namespace: str,
    name: str,
    uid: str | None = None,
    *,
    live: Mapping[str, Any] | None = None,
) -> ReconcileOutcome:
    """Reconcile one OCRServing from its current state in the apiserver (`uid`, when the
    caller knows it, spares a read; so may `live`, kopf's copy of the resource)."""
    if uid is None:
        found = await ctx.kube.get_own(namespace, name)
        if found is None:
            return ReconcileOutcome(None, None, False, None, "resource is gone")
        uid = str(found["metadata"]["uid"])
    async with ctx.lock(uid):
        # Read again under the lock: the advisor may have moved status.activeMode meanwhile
        # (the live copy stands in only once it shows that write).
        body = await ctx.kube.get_own(namespace, name, live)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return ReconcileOutcome(None, None, False, None, "resource is gone")
        if body["metadata"]["uid"] != uid:  # deleted and created again under that name
            return ReconcileOutcome(None, None, False, None, "resource was replaced")
        return await _reconcile(ctx, Owner(name, namespace, uid), body)


async def _reconcile(ctx: ReconcileContext, owner: Owner, body: Body) -> ReconcileOutcome:
    generation = body["metadata"].get("generation")
    raw_status: Body = body.get("status") or {}
    try:
        spec = OCRServingSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        message = f"invalid spec: {_first_errors(error)}"
        await write_failure(
            ctx.kube,
            owner,
            raw_status=raw_status,
            generation=generation,
            reason=Reason.INVALID_SPEC,
            message=message,
        )
        return ReconcileOutcome(None, None, False, None, message)
    status = _parse_status(raw_status)
    if spec.paused:
        await write_paused(ctx.kube, owner, raw_status=raw_status, generation=generation)
        return ReconcileOutcome(status.active_mode, None, False, None, "paused")
    target = resolve_active_mode(spec, status)
    try:
        return await _converge(ctx, owner, body, spec, target)
    except ReconcileError as failure:
        await write_failure(
            ctx.kube,
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
    instance = Instance(owner.name, owner.namespace)
    _check_images(ctx, spec)
    bootstrap = ctx.settings.kafka_bootstrap or spec.kafka.bootstrap_servers
    live, pods = await _workloads(ctx, instance)
    if not live and not pods and "components" not in raw_status:  # never reported on
        ctx.applied.born(owner.uid)
    observed = await observe(
        ctx.topics,
        bootstrap=bootstrap,
        spec=spec,
        instance=instance,
        target=target,
        deployments=live,
        pods=pods,
    )
    plan = plan_transition(target, observed)
    topics = await ensure_topics_step(
        ctx.kube,
        ctx.topics,
        bootstrap=bootstrap,
        spec=spec,
        instance=instance,
        plan=plan,
        owner=owner,
    )
    if topics.failure is not None:
        raise ReconcileError(
            topics.failure.reason, topics.failure.message, ctx.settings.error_backoff_seconds
        )
    try:
        model = await resolve_model(ctx.registry, spec, raw_status)
    except ModelRegistryError as error:  # an unknown alias waits for a person, not for time
        delay = ctx.settings.error_backoff_seconds * (1 if error.temporary else 4)
        raise ReconcileError(Reason.MODEL_UNRESOLVED, str(error), delay) from error
    job, changed = await _apply_gated(ctx, owner, spec, plan, raw_status, model=model)
    migration, migration_message = migration_state(job, pods)
    live = deployments_after_pass(live, changed)
    rollouts = component_rollouts(spec, instance, plan, live)
    seen = Seen(
        plan=plan,
        topics=topics,
        migration=migration,
        migration_message=migration_message,
        rollouts=rollouts,
        causes=pod_causes(pods),
        model_version=model.label,
    )
    return await _report(
        ctx, owner, body, spec, seen=seen, migration_job_name=job["metadata"]["name"], model=model
    )


def _check_images(ctx: ReconcileContext, spec: OCRServingSpec) -> None:
    """The operator's image allow-list (OCR_OPERATOR_ALLOWED_IMAGE_PREFIXES): a stack whose
    spec names another image gets nothing applied."""
    defaults = ctx.settings.stack_defaults()
    images = {c.value: component_image(spec, c, defaults) for c in Component}
    images["migration"] = migration_image(spec, defaults)
    refused = {
        part: image for part, image in images.items() if not ctx.settings.image_allowed(image)
    }
    if refused:
        part, image = next(iter(refused.items()))
        allowed = ", ".join(ctx.settings.allowed_image_prefixes)
        raise ReconcileError(
            Reason.IMAGE_NOT_ALLOWED,
            f"image {image} ({part}) is not allowed by the operator (allowed prefixes: {allowed})",
            None,
        )


async def _apply_gated(
    ctx: ReconcileContext,
    owner: Owner,
    spec: OCRServingSpec,
    plan: Plan,
    raw_status: Body,
    *,
    model: ResolvedModel,
) -> tuple[Body, dict[str, Body | None]]:
    """The ConfigMap, the migration Job, and only once the Job succeeded the workloads (pods
    of a new image start, or roll, only once its schema is in place). Returns the Job, and
    the Deployments applied (as the apiserver returned them) or deleted (None), by name."""
    instance = Instance(owner.name, owner.namespace)
    defaults = ctx.settings.stack_defaults()
    manifests = render(spec, instance, plan, defaults, replica_caps(raw_status), model=model)
    # The ConfigMap (the migration reads it) and the NetworkPolicies (its pod's egress).
    early = [m for m in manifests if m.kind in (Kind.CONFIG_MAP, Kind.NETWORK_POLICY)]
    backoff = ctx.settings.error_backoff_seconds
    memo = ctx.applied
    await apply_all(ctx.kube, owner, early, backoff=backoff, memo=memo)
    job = await _ensure_migration(ctx, owner, spec, instance, defaults)
    memo.created(owner.uid, (Kind.JOB, job["metadata"]["name"]))
    if migration_state(job, [])[0] is not MigrationState.SUCCEEDED:
        return job, {}
    seen = ctx.api_keys_seen
    await ensure_api_key(ctx.kube, owner, spec, instance, seen=seen, backoff=backoff)
    late = [m for m in manifests if m not in early]
    applied = await apply_all(ctx.kube, owner, late, backoff=backoff, memo=memo)
    desired = {m.key for m in manifests} | {(Kind.JOB, job["metadata"]["name"])}
    deleted = await prune(ctx.kube, owner, instance, desired, backoff=backoff, memo=memo)
    changed: dict[str, Body | None] = {
        name: None for kind, name in deleted if kind is Kind.DEPLOYMENT
    }
    changed |= {name: body for (kind, name), body in applied.items() if kind is Kind.DEPLOYMENT}
    return job, changed


async def _report(
    ctx: ReconcileContext,
    owner: Owner,
    body: Body,
    spec: OCRServingSpec,
    *,
    seen: Seen,
    migration_job_name: str,
    model: ResolvedModel,
) -> ReconcileOutcome:
    raw_status: Body = body.get("status") or {}
    generation = body["metadata"].get("generation")
    target = seen.plan.target
    verdict = judge(seen)
    status = OCRServingStatus(
        observed_generation=generation,
        active_mode=target,
        spec_mode=spec.architecture.mode,
        url=api_url(Instance(owner.name, owner.namespace)),
        migration=migration_job_name,
        model=model.status(),
        components=_components(seen),
    )
    # Set fields only, components in full: a component that is gone is written as null.
    instance = Instance(owner.name, owner.namespace)
    worker = seen.rollouts.get(Component.WORKER)
    fields = status.model_dump(
        mode="json",
        by_alias=True,
        include={"observed_generation", "active_mode", "spec_mode", "url", "migration", "model"},
    )
    # The scale subresource: what the worker Deployment runs, and how to find its pods.
    fields["workerReplicas"] = worker.desired if worker is not None else 0
    fields["workerSelector"] = ",".join(
        f"{k}={v}" for k, v in sorted(selector_labels(instance, Component.WORKER).items())
    )
    fields["components"] = status.components.model_dump(mode="json", by_alias=True)
    await write(
        ctx.kube,
        owner,
        raw_status=raw_status,
        fields=fields,
        generation=generation,
        updates=condition_updates(seen, verdict),
    )
    await announce(
        ctx.kube, owner, raw_status=raw_status, target=target, plan=seen.plan, verdict=verdict
    )
    settings = ctx.settings
    watched = settings.resync_seconds if settings.watch_children else None
    retry = retry_after(verdict, poll=settings.wait_seconds, watched=watched)
    return ReconcileOutcome(target, seen.plan.phase, verdict.ready, retry, verdict.message)


async def _ensure_migration(
    ctx: ReconcileContext,
    owner: Owner,
    spec: OCRServingSpec,
    instance: Instance,
    defaults: StackDefaults,
) -> Body:
    """The migration Job of the current image, created once (its template is immutable);
    read only when neither the watch since the last resync nor a read found it finished."""
    manifest = migration_job(spec, instance, defaults)
    known = ctx.jobs.get(owner.uid, manifest.name)
    if known is not None:
        return known
    job = await ensure_created(
        ctx.kube,
        owner,
        manifest,
        what="migration Job",
        backoff=ctx.settings.error_backoff_seconds,
    )
    if migration_state(job, [])[0] is not MigrationState.RUNNING:
        ctx.jobs.remember(owner.uid, job)  # a finished Job stays as it is until deleted
    return job


async def _workloads(
    ctx: ReconcileContext, instance: Instance
) -> tuple[dict[str, Body], list[Body]]:
    """The stack's Deployments by name (one list rather than a read of each), then its
    pods: listed after the Deployments, a pod that a finished rollout replaced is gone
    already, so the stack never reads Ready and Degraded by that old pod at once."""
    live = await _list(ctx, Kind.DEPLOYMENT, instance, instance_labels(instance))
    pods = await _list(ctx, Kind.POD, instance, pod_labels(instance))
    return {d["metadata"]["name"]: d for d in live}, pods


async def _list(
    ctx: ReconcileContext, kind: Kind, instance: Instance, labels: dict[str, str]
) -> list[Body]:
    try:
        return await ctx.kube.list(kind, instance.namespace, labels)
    except KubeError as error:
        raise ReconcileError(
            Reason.APPLY_FAILED, f"list {kind.value}: {error.message}", ctx.settings.wait_seconds
        ) from error


def _components(seen: Seen) -> ComponentsStatus:
    return ComponentsStatus.model_validate(
        {component.value: state.wire() for component, state in seen.rollouts.items()}
    )


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
