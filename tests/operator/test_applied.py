"""The memo of applied manifests: a pass applies only the children whose rendered manifest
changed, the reapply period applies everything again (drift), a failure forgets, and a deleted
child's event wakes its stack and gets it applied again."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from ocr_operator import KIND
from ocr_operator.applied import AppliedMemo
from ocr_operator.child_events import ChildWakeups
from ocr_operator.handlers import reconcile_pass, register
from ocr_operator.ports import KubeError, Owner
from ocr_operator.reconcile import ReconcileContext, reconcile
from ocr_operator.render import Kind, Manifest
from ocr_operator.settings import OperatorSettings
from ocr_operator.status_write import changes
from tests.operator._fakes import NAME, NS, UID, FakeKube, context, spec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _converged(kube: FakeKube) -> tuple[ReconcileContext, Clock]:
    ctx = context(kube)
    clock = Clock()
    ctx.applied = AppliedMemo(max_age=ctx.settings.reapply_seconds, clock=clock)
    return ctx, clock


async def _settle(kube: FakeKube, ctx: ReconcileContext) -> None:
    await reconcile(ctx, NS, NAME)  # the migration Job
    await reconcile(ctx, NS, NAME)  # it completed: the workloads follow
    kube.applied.clear()
    kube.deleted.clear()


def _counting_lists(kube: FakeKube) -> list[Kind]:
    listed: list[Kind] = []
    list_ = kube.list

    async def counting(kind: Kind, namespace: str, labels: Any) -> Any:
        listed.append(kind)
        return await list_(kind, namespace, labels)

    kube.list = counting  # type: ignore[method-assign]
    return listed


async def test_an_unchanged_manifest_is_not_applied_again() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    outcome = await reconcile(ctx, NS, NAME)
    assert outcome.ready
    assert kube.applied == []


async def test_a_changed_manifest_is_applied_and_only_it() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    kube.resource["spec"]["worker"] = {"replicas": 3}
    await reconcile(ctx, NS, NAME)
    assert kube.applied == [(Kind.DEPLOYMENT, "demo-worker")]
    assert kube.objects[(Kind.DEPLOYMENT, "demo-worker")]["spec"]["replicas"] == 3


async def test_the_reapply_period_applies_everything_again() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, clock = _converged(kube)
    await _settle(kube, ctx)
    clock.now += ctx.settings.reapply_seconds - 1
    await reconcile(ctx, NS, NAME)
    assert kube.applied == []
    clock.now += 1
    await reconcile(ctx, NS, NAME)
    assert (Kind.DEPLOYMENT, "demo-worker") in kube.applied
    assert (Kind.CONFIG_MAP, "demo-config") in kube.applied
    kube.applied.clear()
    await reconcile(ctx, NS, NAME)
    assert kube.applied == []


async def test_a_failed_apply_forgets_the_child() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    kube.resource["spec"]["worker"] = {"replicas": 2}
    apply = kube.apply

    async def conflict(manifest: Manifest, owner: Owner, field_manager: str = "") -> Any:
        raise KubeError(409, "the object has been modified")

    kube.apply = conflict  # type: ignore[method-assign]
    outcome = await reconcile(ctx, NS, NAME)
    assert not outcome.ready
    kube.apply = apply  # type: ignore[method-assign]
    kube.resource["spec"]["worker"] = {}  # back to the manifest applied before the failure
    await reconcile(ctx, NS, NAME)
    assert kube.applied == [(Kind.DEPLOYMENT, "demo-worker")]


async def test_a_failed_pass_forgets_the_whole_stack() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    get_own = kube.get_own

    async def unavailable(namespace: str, name: str, live: Any = None) -> Any:
        raise KubeError(0, "connection reset")

    kube.get_own = unavailable  # type: ignore[method-assign]
    await reconcile_pass(ctx, NS, NAME, UID)
    kube.get_own = get_own  # type: ignore[method-assign]
    await reconcile(ctx, NS, NAME)
    assert (Kind.DEPLOYMENT, "demo-worker") in kube.applied
    assert (Kind.CONFIG_MAP, "demo-config") in kube.applied


async def test_prune_runs_when_the_wanted_set_changes_only() -> None:
    kube = FakeKube(spec("Writer"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    listed = _counting_lists(kube)
    await reconcile(ctx, NS, NAME)
    assert set(listed) == {Kind.DEPLOYMENT, Kind.POD}  # the workloads only: no prune
    kube.resource["spec"] = spec("Standard")
    for _ in range(4):  # workers back to Standard, the writer drained, then removed
        await reconcile(ctx, NS, NAME)
    assert (Kind.DEPLOYMENT, "demo-writer") in kube.deleted


async def test_a_deleted_child_wakes_its_stack_and_is_applied_again() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    wakeups, wakeup = ChildWakeups(), asyncio.Event()
    wakeups.register(UID, wakeup)
    body = kube.objects.pop((Kind.DEPLOYMENT, "demo-worker"))
    body["kind"] = "Deployment"
    assert wakeups.child_changed("DELETED", body, ctx.applied)
    assert wakeup.is_set()
    await reconcile(ctx, NS, NAME)
    assert kube.applied == [(Kind.DEPLOYMENT, "demo-worker")]


def test_events_of_objects_no_stack_controls_wake_nothing() -> None:
    wakeups, wakeup = ChildWakeups(), asyncio.Event()
    wakeups.register(UID, wakeup)
    memo = AppliedMemo(max_age=30)
    other = {"kind": "OtherThing", "uid": UID, "controller": True}
    unowned = {"kind": "Deployment", "metadata": {"name": "x", "ownerReferences": [other]}}
    assert not wakeups.child_changed("MODIFIED", unowned, memo)
    ours = {"kind": KIND, "uid": "uid-of-a-stack-gone", "controller": True}
    gone = {"kind": "Deployment", "metadata": {"name": "x", "ownerReferences": [ours]}}
    assert not wakeups.child_changed("DELETED", gone, memo)
    assert not wakeup.is_set()
    wakeups.unregister(UID)
    mine = {"kind": "Job", "metadata": {"name": "m", "ownerReferences": [{**ours, "uid": UID}]}}
    assert not wakeups.child_changed("MODIFIED", mine, memo)


async def test_an_unchanged_status_is_not_written_again() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    writes: list[dict[str, Any]] = []
    patch = kube.patch_status

    async def counting(namespace: str, name: str, status: dict[str, Any]) -> Any:
        writes.append(status)
        return await patch(namespace, name, status)

    kube.patch_status = counting  # type: ignore[method-assign]
    await reconcile(ctx, NS, NAME)
    assert writes == []


def test_merge_patch_changes() -> None:
    current = {"a": 1, "nested": {"b": 2, "c": 3}}
    assert not changes(current, {"a": 1, "nested": {"b": 2}, "gone": None})
    assert changes(current, {"nested": {"c": 4}})
    assert changes(current, {"a": None})
    assert changes(current, {"new": {"x": 1}})
    assert changes({"a": [1]}, {"a": [1, 2]})


def test_children_are_watched_unless_turned_off() -> None:
    def watched(settings: OperatorSettings) -> set[tuple[str | None, str]]:
        registry = kopf.OperatorRegistry()
        register(registry, settings)
        selectors = [h.selector for h in registry._watching.get_all_handlers()]
        return {(s.group, str(s.any_name)) for s in selectors if s is not None}

    own = {("ocrserving.io", "ocrservings")}  # its spec changes wake its loop
    both = {("apps", "deployments"), ("batch", "jobs")}
    assert watched(OperatorSettings()) == own | both
    assert watched(OperatorSettings(watch_children=False)) == own


async def test_a_stack_born_here_is_pruned_without_listing() -> None:
    kube = FakeKube(spec("Writer"))
    ctx, _ = _converged(kube)
    listed = _counting_lists(kube)
    await reconcile(ctx, NS, NAME)  # the ConfigMap, the policies (the writer's too), the Job
    assert (Kind.NETWORK_POLICY, "demo-writer") in kube.applied
    kube.resource["spec"] = spec("Standard")
    await reconcile(ctx, NS, NAME)  # the Job completed: the workloads, then the first prune
    assert (Kind.DEPLOYMENT, "demo-worker") in kube.applied
    # What this process applied and no longer wants is deleted; nothing else can exist.
    assert kube.deleted == [(Kind.NETWORK_POLICY, "demo-writer")]
    assert set(listed) == {Kind.DEPLOYMENT, Kind.POD}


async def test_a_stack_found_running_is_pruned_by_listing() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    restarted, _ = _converged(kube)  # a new operator process: it knows nothing applied
    listed = _counting_lists(kube)
    await reconcile(restarted, NS, NAME)
    assert {Kind.SERVICE, Kind.CONFIG_MAP, Kind.NETWORK_POLICY} <= set(listed)


async def test_a_pruned_child_is_applied_again_when_its_mode_comes_back() -> None:
    kube = FakeKube(spec("Writer"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    kube.resource["spec"] = spec("Standard")
    for _ in range(4):  # workers back to Standard, the writer drained, then removed
        await reconcile(ctx, NS, NAME)
    assert (Kind.NETWORK_POLICY, "demo-writer") in kube.deleted
    kube.applied.clear()
    kube.resource["spec"] = spec("Writer")
    await reconcile(ctx, NS, NAME)
    assert (Kind.NETWORK_POLICY, "demo-writer") in kube.applied


async def test_passes_beyond_the_bound_wait_for_a_free_slot() -> None:
    kube = FakeKube(spec("Standard"))
    ctx = context(kube, settings=OperatorSettings(max_passes_in_flight=1))
    await _settle(kube, ctx)
    in_flight, most = 0, 0
    get_own = kube.get_own

    async def slow(namespace: str, name: str, live: Any = None) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)  # let the other passes run if nothing holds them back
        in_flight -= 1
        return await get_own(namespace, name)

    kube.get_own = slow  # type: ignore[method-assign]
    # No uid: each pass reads the resource before it takes the resource's own lock.
    delays = await asyncio.gather(*(reconcile_pass(ctx, NS, NAME) for _ in range(3)))
    assert most == 1
    assert all(delay == ctx.settings.resync_seconds for delay in delays)


def _counting_job_reads(kube: FakeKube) -> list[str]:
    read: list[str] = []
    get = kube.get

    async def counting(kind: Kind, namespace: str, name: str) -> Any:
        if kind is Kind.JOB:
            read.append(name)
        return await get(kind, namespace, name)

    kube.get = counting  # type: ignore[method-assign]
    return read


async def test_a_finished_migration_job_is_read_once_until_the_resync() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    reads = _counting_job_reads(kube)
    await _settle(kube, ctx)
    assert len(reads) == 2  # before its create, then finished
    await reconcile(ctx, NS, NAME)
    await reconcile(ctx, NS, NAME)
    assert len(reads) == 2
    ctx.jobs.forget(UID)  # what the resync pass and a failed pass do
    await reconcile(ctx, NS, NAME)
    assert len(reads) == 3


async def test_a_running_migration_job_is_read_by_every_pass() -> None:
    kube = FakeKube(spec("Standard"))
    kube.job_outcome = None
    ctx, _ = _converged(kube)
    reads = _counting_job_reads(kube)
    for _ in range(3):
        await reconcile(ctx, NS, NAME)
    assert len(reads) == 3
    assert (Kind.DEPLOYMENT, "demo-worker") not in kube.applied
    kube.job_outcome = "Complete"
    await reconcile(ctx, NS, NAME)
    assert (Kind.DEPLOYMENT, "demo-worker") in kube.applied


async def test_a_deleted_migration_job_is_made_again() -> None:
    kube = FakeKube(spec("Standard"))
    ctx, _ = _converged(kube)
    await _settle(kube, ctx)
    job = next(body for (kind, _), body in kube.objects.items() if kind is Kind.JOB)
    owned = {**job, "metadata": {**job["metadata"], "ownerReferences": [_owner_reference()]}}
    del kube.objects[(Kind.JOB, job["metadata"]["name"])]
    ctx.jobs.job_event("DELETED", owned)
    await reconcile(ctx, NS, NAME)
    assert (Kind.JOB, job["metadata"]["name"]) in kube.applied


def _owner_reference() -> dict[str, Any]:
    return {"kind": "OCRServing", "name": NAME, "uid": UID, "controller": True}
