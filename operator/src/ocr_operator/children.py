"""The apply layer of reconcile: server-side apply of the rendered children, the ownership
check that keeps the operator from adopting objects it did not create, and the prune of
children the active mode no longer uses."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from ocr_operator import FIELD_MANAGER
from ocr_operator.applied import AppliedMemo, ChildKey
from ocr_operator.model import Reason
from ocr_operator.ports import Body, KubeApi, KubeError, Owner
from ocr_operator.render import Instance, Kind, Manifest, instance_labels

# The field manager that holds a Deployment's replicas for one step when an autoscaler takes
# them over: the scaler's first write through the scale subresource then takes them from it.
HANDOFF = f"{FIELD_MANAGER}-replicas-handoff"

T = TypeVar("T")


class ReconcileError(Exception):
    """A step of reconcile failed: report `reason` on the resource and retry after
    `retry_after` seconds (None: only a change of the resource can fix it)."""

    def __init__(self, reason: Reason, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def owned_by(body: Body, uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in body["metadata"].get("ownerReferences") or []
    )


def foreign(kind: Kind, body: Body, owner: Owner) -> ReconcileError:
    refs = body["metadata"].get("ownerReferences") or []
    holder = ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in refs) or "no owner"
    return ReconcileError(
        Reason.OBJECT_NOT_OWNED,
        f"{kind.value}/{body['metadata']['name']} exists and is not owned by this OCRServing "
        f"({holder}); the operator does not take over objects it did not create: delete or "
        "rename it",
        None,
    )


async def ensure_created(
    kube: KubeApi, owner: Owner, manifest: Manifest, *, what: str, backoff: float
) -> Body:
    """The object as it exists, created from `manifest` when missing and never changed after
    (a Job's template is immutable); `what` names it in the failure message."""
    try:
        existing = await kube.get(manifest.kind, owner.namespace, manifest.name)
        if existing is not None:
            if not owned_by(existing, owner.uid):
                raise foreign(manifest.kind, existing, owner)
            return existing
        return await kube.apply(manifest, owner)
    except KubeError as error:
        raise ReconcileError(
            Reason.APPLY_FAILED,
            f"{what} {manifest.name}: {error.message}",
            backoff,
        ) from error


async def apply_all(
    kube: KubeApi,
    owner: Owner,
    manifests: list[Manifest],
    *,
    backoff: float,
    memo: AppliedMemo | None = None,
) -> dict[ChildKey, Body]:
    """Server-side apply each manifest; with `memo`, only those that changed since their
    last successful apply (or whose entry is too old). Returns those applied, as the
    apiserver returned them."""
    applied: dict[ChildKey, Body] = {}
    for manifest in manifests:
        if manifest.kind is Kind.KAFKA_TOPIC:
            continue  # applied by the topics step
        if memo is not None and memo.unchanged(owner.uid, manifest):
            continue
        try:
            applied[manifest.key] = await _apply_one(kube, owner, manifest)
        except KubeError as error:
            if memo is not None:
                memo.forget(owner.uid, manifest.key)
            hint = ""
            if manifest.kind.optional and error.status == 404:
                hint = f" (KEDA is not installed: no keda.sh/v1alpha1 {manifest.kind.value})"
            raise ReconcileError(
                Reason.APPLY_FAILED,
                f"apply {manifest.kind.value}/{manifest.name}: {error.message}{hint}",
                backoff if error.temporary else backoff * 4,
            ) from error
        except ReconcileError:
            if memo is not None:
                memo.forget(owner.uid, manifest.key)
            raise
        if memo is not None:
            memo.applied(owner.uid, manifest)
    return applied


async def _apply_one(kube: KubeApi, owner: Owner, manifest: Manifest) -> Body:
    # Never adopt: server-side apply with force would silently take over an object of that
    # name that someone else created.
    if manifest.owned:
        live = await kube.get(manifest.kind, owner.namespace, manifest.name)
        if live is not None and not owned_by(live, owner.uid):
            raise foreign(manifest.kind, live, owner)
        if live is not None and _releases_replicas(manifest, live):
            await kube.apply(_replicas_handoff(manifest, live), owner, HANDOFF)
    return await kube.apply(manifest, owner)


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


async def prune(
    kube: KubeApi,
    owner: Owner,
    instance: Instance,
    desired: set[ChildKey],
    *,
    backoff: float,
    memo: AppliedMemo | None = None,
) -> set[ChildKey]:
    """Delete children of this instance that the active mode does not use (and migration
    Jobs of older images); with `memo`, only when the wanted set changed since the last
    prune (or that prune is too old), and without listing anything on the first prune of a
    stack this process saw start from nothing (`AppliedMemo.take_born`). Returns what was
    deleted.

    KafkaTopics are never pruned: deleting one makes Strimzi delete the topic's data."""
    if memo is not None and memo.pruned_for(owner.uid, desired):
        return set()
    if memo is not None and memo.take_born(owner.uid):
        # Only what this process applied can exist: delete the unwanted ones, no lists.
        unwanted = {key for key in memo.applied_keys(owner.uid) - desired if key[0].prunable}
        for kind, name in sorted(unwanted, key=lambda key: (key[0].value, key[1])):
            await _pruning(kind, backoff, kube.delete(kind, instance.namespace, name))
        deleted = unwanted
    else:
        deleted = set()
        for kind in [k for k in Kind if k.prunable]:
            listed = _prune_kind(kube, owner, instance, kind, desired)
            deleted |= await _pruning(kind, backoff, listed)
    if memo is not None:
        for key in deleted:  # applied again, in full, if a later mode wants it back
            memo.forget(owner.uid, key)
        memo.pruned(owner.uid, desired)
    return deleted


async def _pruning(kind: Kind, backoff: float, step: Awaitable[T]) -> T:
    try:
        return await step
    except KubeError as error:
        raise ReconcileError(
            Reason.APPLY_FAILED, f"prune {kind.value}: {error.message}", backoff
        ) from error


async def _prune_kind(
    kube: KubeApi, owner: Owner, instance: Instance, kind: Kind, desired: set[ChildKey]
) -> set[ChildKey]:
    try:
        children = await kube.list(kind, instance.namespace, instance_labels(instance))
    except KubeError as error:
        if kind.optional and error.status == 404:
            return set()  # the CRD is not installed: nothing of that kind exists
        raise
    deleted: set[ChildKey] = set()
    for child in children:
        name = child["metadata"]["name"]
        if owned_by(child, owner.uid) and (kind, name) not in desired:
            await kube.delete(kind, instance.namespace, name)
            deleted.add((kind, name))
    return deleted
