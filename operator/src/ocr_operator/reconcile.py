"""The one level-based reconcile: observe, plan, ensure topics, render, apply, prune, status.

Called by kopf's create/update/resume handlers and timer, and by the advisor after it
changed `status.activeMode`. Idempotent: running it twice in a row changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from pydantic import ValidationError

from ocr_operator import FIELD_MANAGER
from ocr_operator.advisor.backpressure import replica_caps
from ocr_operator.health import MigrationState, Rollout, migration_state, pod_causes, rollout
from ocr_operator.kafka_topics import KafkaTopicAdmin
from ocr_operator.mlflow_registry import MlflowRegistry
from ocr_operator.model import (
    Component,
    Mode,
    OCRServingSpec,
    OCRServingStatus,
    Reason,
    resolve_active_mode,
)
from ocr_operator.model.model_source import ResolvedModel
from ocr_operator.model.scaling import CpuAutoscaling, LagAutoscaling
from ocr_operator.model.status import ComponentsStatus
from ocr_operator.model_step import resolve_model
from ocr_operator.observe import observe
from ocr_operator.ports import (
    Body,
    KubeApi,
    KubeError,
    ModelRegistry,
    ModelRegistryError,
    Owner,
    TopicAdmin,
)
from ocr_operator.render import (
    Instance,
    Kind,
    Manifest,
    Phase,
    Plan,
    StackDefaults,
    api_key_secret,
    api_url,
    component_image,
    component_name,
    instance_labels,
    migration_image,
    migration_job,
    new_api_key,
    plan_transition,
    pod_labels,
    render,
    selector_labels,
)
from ocr_operator.settings import OperatorSettings
from ocr_operator.status_write import announce, write, write_failure, write_paused
from ocr_operator.telemetry import OperatorMetrics
from ocr_operator.topics_step import ensure_topics_step
from ocr_operator.verdict import Seen, condition_updates, judge

# How often a generated API key Secret that exists is created again (blind, a no-op unless
# someone deleted it).
API_KEY_RECHECK_SECONDS = 300.0


@dataclass
class ReconcileContext:
    """Long-lived dependencies of reconcile (one per operator process)."""

    kube: KubeApi
    settings: OperatorSettings
    topics: TopicAdmin = field(default_factory=KafkaTopicAdmin)
    registry: ModelRegistry = field(default_factory=MlflowRegistry)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    # When the generated API key Secret of a resource (uid) was last found or created: the
    # operator cannot read Secrets, so it re-creates blind, but not on every resync.
    api_keys_seen: dict[str, float] = field(default_factory=dict)

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
    except _FailureError as failure:
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
    pods = await _list(ctx, Kind.POD, instance, pod_labels(instance))
    observed = await observe(
        ctx.kube,
        ctx.topics,
        bootstrap=bootstrap,
        spec=spec,
        instance=instance,
        target=target,
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
        raise _FailureError(
            topics.failure.reason, topics.failure.message, ctx.settings.error_backoff_seconds
        )
    try:
        model = await resolve_model(ctx.registry, spec, raw_status)
    except ModelRegistryError as error:  # an unknown alias waits for a person, not for time
        delay = ctx.settings.error_backoff_seconds * (1 if error.temporary else 4)
        raise _FailureError(Reason.MODEL_UNRESOLVED, str(error), delay) from error
    job = await _apply_gated(ctx, owner, spec, plan, raw_status, model=model)
    migration, migration_message = migration_state(job, pods)
    rollouts = await _rollouts(ctx, spec, instance, plan)
    # Pods listed again, after the Deployments: a pod that a finished rollout replaced is
    # gone by then, so the stack never reads Ready and Degraded by that old pod at once.
    pods = await _list(ctx, Kind.POD, instance, pod_labels(instance))
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
        raise _FailureError(
            Reason.IMAGE_NOT_ALLOWED,
            f"image {image} ({part}) is not allowed by the operator (allowed prefixes: {allowed})",
            None,
        )


def _owned_by(body: Body, uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in body["metadata"].get("ownerReferences") or []
    )


def _foreign(kind: Kind, body: Body, owner: Owner) -> _FailureError:
    refs = body["metadata"].get("ownerReferences") or []
    holder = ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in refs) or "no owner"
    return _FailureError(
        Reason.OBJECT_NOT_OWNED,
        f"{kind.value}/{body['metadata']['name']} exists and is not owned by this OCRServing "
        f"({holder}); the operator does not take over objects it did not create: delete or "
        "rename it",
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
) -> Body:
    """The ConfigMap, the migration Job, and only once the Job succeeded the workloads (pods
    of a new image start, or roll, only once its schema is in place). Returns the Job."""
    instance = Instance(owner.name, owner.namespace)
    defaults = ctx.settings.stack_defaults()
    manifests = render(spec, instance, plan, defaults, replica_caps(raw_status), model=model)
    # The ConfigMap (the migration reads it) and the NetworkPolicies (its pod's egress).
    early = [m for m in manifests if m.kind in (Kind.CONFIG_MAP, Kind.NETWORK_POLICY)]
    await _apply_all(ctx, owner, early)
    job = await _ensure_migration(ctx, owner, spec, instance, defaults)
    if migration_state(job, [])[0] is MigrationState.SUCCEEDED:
        await _ensure_api_key(ctx, owner, spec, instance)
        await _apply_all(ctx, owner, [m for m in manifests if m not in early])
        desired = {m.key for m in manifests} | {(Kind.JOB, job["metadata"]["name"])}
        await _prune(ctx, owner, instance, desired)
    return job


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
    retry = None if verdict.ready and verdict.progressing is None else ctx.settings.wait_seconds
    return ReconcileOutcome(target, seen.plan.phase, verdict.ready, retry, verdict.message)


async def _ensure_migration(
    ctx: ReconcileContext,
    owner: Owner,
    spec: OCRServingSpec,
    instance: Instance,
    defaults: StackDefaults,
) -> Body:
    """The migration Job of the current image, created once (its template is immutable)."""
    manifest = migration_job(spec, instance, defaults)
    try:
        existing = await ctx.kube.get(Kind.JOB, instance.namespace, manifest.name)
        if existing is not None:
            if not _owned_by(existing, owner.uid):
                raise _foreign(Kind.JOB, existing, owner)
            return existing
        return await ctx.kube.apply(manifest, owner)
    except KubeError as error:
        raise _FailureError(
            Reason.APPLY_FAILED,
            f"migration Job {manifest.name}: {error.message}",
            ctx.settings.error_backoff_seconds,
        ) from error


async def _ensure_api_key(
    ctx: ReconcileContext, owner: Owner, spec: OCRServingSpec, instance: Instance
) -> None:
    """The generated API key Secret, created once before the API that reads it; an existing
    Secret of that name (a rotated key, or one a person put there) is left as it is."""
    manifest = api_key_secret(spec, instance, new_api_key())
    if manifest is None:
        return
    seen = ctx.api_keys_seen.get(owner.uid)
    if seen is not None and time.monotonic() - seen < API_KEY_RECHECK_SECONDS:
        return
    try:
        await ctx.kube.create(manifest, owner)
        ctx.api_keys_seen[owner.uid] = time.monotonic()
    except KubeError as error:
        hint = ""
        if error.status == 403:
            hint = " (the operator may not create Secrets here: name one in spec.api.auth."
            hint += "apiKeySecretRef)"
        raise _FailureError(
            Reason.API_KEY_UNAVAILABLE,
            f"create Secret {manifest.name}: {error.message}{hint}",
            ctx.settings.error_backoff_seconds,
        ) from error


async def _rollouts(
    ctx: ReconcileContext, spec: OCRServingSpec, instance: Instance, plan: Plan
) -> dict[Component, Rollout]:
    wanted = [Component.API, Component.WORKER] + ([Component.WRITER] if plan.include_writer else [])
    out: dict[Component, Rollout] = {}
    for component in wanted:
        name = component_name(instance, component)
        try:
            deployment = await ctx.kube.get(Kind.DEPLOYMENT, instance.namespace, name)
        except KubeError as error:
            raise _FailureError(
                Reason.APPLY_FAILED, f"read {name}: {error.message}", ctx.settings.wait_seconds
            ) from error
        if deployment is None:
            deployment = {"metadata": {"name": name}, "spec": {"replicas": 1}}
        out[component] = rollout(component.value, deployment, _floor(spec, component))
    return out


def _floor(spec: OCRServingSpec, component: Component) -> int | None:
    """With an autoscaler, its minReplicas available is enough for Ready."""
    scaling: CpuAutoscaling | LagAutoscaling = spec.api.autoscaling
    if component is Component.WORKER:
        scaling = spec.worker.autoscaling
    elif component is Component.WRITER:
        scaling = spec.writer.autoscaling
    return scaling.min_replicas if scaling.enabled else None


async def _list(
    ctx: ReconcileContext, kind: Kind, instance: Instance, labels: dict[str, str]
) -> list[Body]:
    try:
        return await ctx.kube.list(kind, instance.namespace, labels)
    except KubeError as error:
        raise _FailureError(
            Reason.APPLY_FAILED, f"list {kind.value}: {error.message}", ctx.settings.wait_seconds
        ) from error


async def _apply_all(ctx: ReconcileContext, owner: Owner, manifests: list[Manifest]) -> None:
    for manifest in manifests:
        if manifest.kind is Kind.KAFKA_TOPIC:
            continue  # applied by the topics step
        try:
            # Never adopt: server-side apply with force would silently take over an object
            # of that name that someone else created.
            if manifest.owned:
                live = await ctx.kube.get(manifest.kind, owner.namespace, manifest.name)
                if live is not None and not _owned_by(live, owner.uid):
                    raise _foreign(manifest.kind, live, owner)
                if live is not None and _releases_replicas(manifest, live):
                    await ctx.kube.apply(_replicas_handoff(manifest, live), owner, HANDOFF)
            await ctx.kube.apply(manifest, owner)
        except KubeError as error:
            delay = ctx.settings.error_backoff_seconds
            hint = ""
            if manifest.kind is Kind.SCALED_OBJECT and error.status == 404:
                hint = " (KEDA is not installed: no keda.sh/v1alpha1 ScaledObject)"
            raise _FailureError(
                Reason.APPLY_FAILED,
                f"apply {manifest.kind.value}/{manifest.name}: {error.message}{hint}",
                delay if error.temporary else delay * 4,
            ) from error


# The field manager that holds a Deployment's replicas for one step when an autoscaler takes
# them over: the scaler's first write through the scale subresource then takes them from it.
HANDOFF = f"{FIELD_MANAGER}-replicas-handoff"


def _releases_replicas(manifest: Manifest, live: Body) -> bool:
    """True when the operator applied `replicas` so far and now leaves them out (an autoscaler
    was switched on): dropped from its apply, the field would fall back to its default, 1."""
    if manifest.kind is not Kind.DEPLOYMENT or "replicas" in manifest.body["spec"]:
        return False
    for entry in live["metadata"].get("managedFields") or []:
        fields = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            return "f:replicas" in fields
    return False


def _replicas_handoff(manifest: Manifest, live: Body) -> Manifest:
    """The live replicas, applied by the handoff manager (no owner reference of its own)."""
    body = {
        "apiVersion": manifest.body["apiVersion"],
        "kind": manifest.body["kind"],
        "metadata": {"name": manifest.name, "namespace": live["metadata"]["namespace"]},
        "spec": {"replicas": live["spec"].get("replicas", 1)},
    }
    return Manifest(manifest.kind, manifest.name, body, manifest.component, owned=False)


async def _prune(
    ctx: ReconcileContext,
    owner: Owner,
    instance: Instance,
    desired: set[tuple[Kind, str]],
) -> None:
    """Delete children of this instance that the active mode does not use (and migration
    Jobs of older images).

    KafkaTopics are never pruned: deleting one makes Strimzi delete the topic's data."""
    kinds = [k for k in Kind if k.prunable]
    for kind in kinds:
        try:
            try:
                children = await ctx.kube.list(kind, instance.namespace, instance_labels(instance))
            except KubeError as error:
                if kind.optional and error.status == 404:
                    continue  # the CRD is not installed: nothing of that kind exists
                raise
            for child in children:
                name = child["metadata"]["name"]
                if _owned_by(child, owner.uid) and (kind, name) not in desired:
                    await ctx.kube.delete(kind, instance.namespace, name)
        except KubeError as error:
            raise _FailureError(
                Reason.APPLY_FAILED,
                f"prune {kind.value}: {error.message}",
                ctx.settings.error_backoff_seconds,
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
