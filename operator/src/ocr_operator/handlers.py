"""kopf handlers. One reconcile loop per OCRServing (a kopf daemon) does all the work: on
start (a create, or the operator's restart), when woken by a change of the spec or of a
child, after the delay a waiting transition asks for, and every resync period (level-based
drift correction).

Why a daemon rather than reconciling inside the change handlers and a timer: kopf removes the
finalizer of a deleted resource only after its change handler returned and its daemons and
timers exited. A change handler cannot be interrupted, and a timer caught mid-reconcile is
looked at again only after `cancellation_polling` (60 s by default), so a deletion used to
wait behind a reconcile for over a minute. A daemon is cancelled at once on deletion.

Why an event handler, not kopf's change handlers, wakes it: those keep the last handled
spec in an annotation, which cost a patch of every new resource and a diff (a deep copy
of the body) of every event, the loop's own status writes included; `metadata.generation`
says the same for nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, Protocol

import kopf

from ocr_operator import API_GROUP, API_VERSION, PLURAL
from ocr_operator.apply import KubeClient, KubeError
from ocr_operator.child_events import ChildWakeups
from ocr_operator.conditions import has_been_ready
from ocr_operator.kafka_topics import KafkaTopicAdmin
from ocr_operator.kube_login import connection_info
from ocr_operator.logs import CHILD_EVENT_HANDLER
from ocr_operator.reconcile import ReconcileContext, ReconcileOutcome, reconcile
from ocr_operator.render import LABEL_MANAGED_BY, Kind
from ocr_operator.render._manifest import MANAGED_BY
from ocr_operator.settings import OperatorSettings
from ocr_operator.telemetry import OperatorMetrics, ReconcileError

log = logging.getLogger(__name__)

MEMO_KEY = "ocr_reconcile_context"
_WAKEUP_KEY = "ocr_reconcile_wakeup"
_GENERATION_KEY = "ocr_seen_generation"
_CHILDREN_KEY = "ocr_child_wakeups"
_SERVED_KEY = "ocr_served"

# How soon kopf looks again at a daemon of a deleted resource that has not exited yet, and
# how long it waits for a cancelled one to finish: a reconcile is level-based, so cancelling
# one mid-way loses nothing.
_DELETION_POLL_SECONDS = 0.5
_CANCELLATION_TIMEOUT_SECONDS = 2.0
# After a wakeup, how long a loop waits for more before it reconciles: a rollout changes a
# Deployment's status several times within a second, and one pass sees them all.
COALESCE_SECONDS = 0.5
# The collector's thresholds once started (`tune_garbage_collector`).
GC_THRESHOLDS = (10_000, 20, 10)


class StopSignal(Protocol):
    """kopf's `stopped` flag of a daemon (a test fake in unit tests)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> Awaitable[object]: ...


def register(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    metrics: OperatorMetrics | None = None,
) -> None:
    """Register the operator's handlers into `registry` (once per registry); `metrics`: where
    reconciles and advisor evaluations are counted (the process's `/metrics`)."""
    resource = (API_GROUP, API_VERSION, PLURAL)

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info()  # the operator's own calls use the same

    @kopf.on.startup(registry=registry)
    async def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        # Progress in annotations under our own prefix: nothing of kopf's is written into
        # status (the CRD's status schema would prune it anyway).
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.persistence.finalizer = f"{API_GROUP}/finalizer"
        # reconcile posts its own Events on changes and errors.
        settings.posting.enabled = False
        settings.background.cancellation_polling = _DELETION_POLL_SECONDS
        settings.background.instant_exit_timeout = _DELETION_POLL_SECONDS
        memo[MEMO_KEY] = ReconcileContext(
            kube=KubeClient.from_environment(operator_settings.kube_threads),
            settings=operator_settings,
            topics=KafkaTopicAdmin(operator_settings.kafka_client_options()),
            metrics=metrics or OperatorMetrics(),
        )
        memo[_CHILDREN_KEY] = ChildWakeups()
        tune_garbage_collector()

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(memo: kopf.Memo, **_: Any) -> None:
        context = memo.get(MEMO_KEY)
        if isinstance(context, ReconcileContext):
            context.kube.close()

    @kopf.on.event(*resource, registry=registry)
    async def _spec_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        if spec_changed(memo, body.get("metadata", {}).get("generation")):
            wakeup_of(memo).set()
        if has_been_ready(body):
            served_of(memo).set()

    if settings.watch_children:
        children = {
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
            "registry": registry,
            "id": CHILD_EVENT_HANDLER,  # its routine success lines are filtered (`logs`)
        }

        @kopf.on.event("apps", "v1", "deployments", **children)  # type: ignore[arg-type]
        @kopf.on.event("batch", "v1", "jobs", **children)  # type: ignore[arg-type]
        async def _child_event(
            type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
        ) -> None:
            context = context_from(memo)
            if body.get("kind") == Kind.JOB.value:  # known before the pass it wakes runs
                context.jobs.job_event(type, body)
            children_of(memo).child_changed(type, body, context.applied)

    @kopf.daemon(
        *resource, id="reconcile", registry=registry,
        cancellation_timeout=_CANCELLATION_TIMEOUT_SECONDS,
    )  # fmt: skip
    async def _reconcile_loop(
        *,
        name: str,
        namespace: str | None,
        uid: str,
        body: kopf.Body,
        memo: kopf.Memo,
        stopped: kopf.DaemonStopped,
        **_: Any,
    ) -> None:
        context = context_from(memo)
        wakeup = wakeup_of(memo)
        children_of(memo).register(uid, wakeup)
        try:
            while not stopped.is_set():
                wakeup.clear()  # a change made while reconciling wakes the next pass at once
                delay = await reconcile_pass(context, namespace or "", name, uid, live=body)
                await sleep_until_woken(wakeup, stopped, delay)
                if wakeup.is_set():
                    await stopped.wait(COALESCE_SECONDS)
                elif delay >= context.settings.resync_seconds:
                    # The resync: every child applied again, whatever the memo says (drift),
                    # and the migration Job read again.
                    context.applied.forget(uid)
                    context.jobs.forget(uid)
        finally:
            children_of(memo).unregister(uid)
            context.applied.forget(uid)
            context.jobs.forget(uid)
            context.kube.forget_own(uid)

    operator_settings = settings


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base. kopf builds one from every event it processes, the children's too (a
    deep copy of the whole body, status and managed fields included, a sixth of the
    operator's CPU with 200 stacks converging), for change handlers and idle daemons; this
    operator has neither."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def context_from(memo: kopf.Memo) -> ReconcileContext:
    """The reconcile context the startup handler stored (for the advisor's handlers too)."""
    context = memo[MEMO_KEY]
    if not isinstance(context, ReconcileContext):
        raise kopf.PermanentError("operator context missing")
    return context


def children_of(memo: kopf.Memo) -> ChildWakeups:
    """The operator's one registry of reconcile loops to wake on their children's events."""
    wakeups = memo.get(_CHILDREN_KEY)
    if not isinstance(wakeups, ChildWakeups):
        wakeups = memo[_CHILDREN_KEY] = ChildWakeups()
    return wakeups


def spec_changed(memo: kopf.Memo, generation: object) -> bool:
    """True when an event of the resource shows a spec (`metadata.generation`) other than
    the last one seen. The first event of a resource only records it: its loop's first
    pass, which kopf starts on that event, reconciles it anyway. The loop's own status
    writes come back as events too, and wake nothing."""
    seen = memo.get(_GENERATION_KEY)
    memo[_GENERATION_KEY] = generation
    return seen is not None and seen != generation


def tune_garbage_collector() -> None:
    """Called once started. What starting allocated (modules, clients) lives as long as the
    process: frozen, the collector stops walking it. And a larger young generation
    (`GC_THRESHOLDS`): kopf makes reference cycles on every event (a body and its views, a
    patch and its views) that only the collector frees; with CPython's threshold of 700,
    the events still in flight at each young collection were promoted, and with 200 stacks
    converging full collections ran every few seconds, 100 to 400 ms each, every reconcile
    waiting (7.7 of the operator's 27 CPU seconds)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def served_of(memo: kopf.Memo) -> asyncio.Event:
    """The per-resource event set once the stack has been Ready (`has_been_ready`), from
    the resource's own events: what the advisor waits for before its first evaluation."""
    served = memo.get(_SERVED_KEY)
    if not isinstance(served, asyncio.Event):
        served = memo[_SERVED_KEY] = asyncio.Event()
    return served


def wakeup_of(memo: kopf.Memo) -> asyncio.Event:
    """The per-resource event that wakes its reconcile loop (kopf gives each resource its
    own copy of the operator's memo, shared by that resource's handlers and daemons)."""
    wakeup = memo.get(_WAKEUP_KEY)
    if not isinstance(wakeup, asyncio.Event):
        wakeup = memo[_WAKEUP_KEY] = asyncio.Event()
    return wakeup


async def reconcile_pass(
    context: ReconcileContext,
    namespace: str,
    name: str,
    uid: str | None = None,
    *,
    live: Mapping[str, Any] | None = None,
) -> float:
    """One reconcile, timed and counted; returns the seconds until the next one. After a
    failed pass, the next one applies every child again (`uid`: whose memo to forget;
    `live`: kopf's copy of the resource, which may spare a read of it)."""
    async with context.slots:
        return await _timed_pass(context, namespace, name, uid, live=live)


async def _timed_pass(
    context: ReconcileContext,
    namespace: str,
    name: str,
    uid: str | None,
    *,
    live: Mapping[str, Any] | None,
) -> float:
    started = time.perf_counter()
    try:
        outcome = await reconcile(context, namespace, name, uid, live=live)
    except KubeError as error:
        log.warning("reconcile of %s/%s: apiserver: %s", namespace, name, error)
        context.metrics.reconcile_failed(namespace, name, ReconcileError.APISERVER)
        _forget(context, uid)
        return context.settings.error_backoff_seconds
    except Exception:  # one failed pass must not end the loop: log it and try again later
        log.exception("reconcile of %s/%s failed", namespace, name)
        context.metrics.reconcile_failed(namespace, name, ReconcileError.INTERNAL)
        _forget(context, uid)
        return context.settings.error_backoff_seconds
    finally:
        context.metrics.reconciled(namespace, name, time.perf_counter() - started)
    return next_delay(outcome, context.settings)


def _forget(context: ReconcileContext, uid: str | None) -> None:
    if uid is not None:
        context.applied.forget(uid)
        context.jobs.forget(uid)


def next_delay(outcome: ReconcileOutcome, settings: OperatorSettings) -> float:
    """A waiting transition or a temporary failure asks for its own delay; otherwise the
    resync period (never longer)."""
    if outcome.retry_after is None:
        return settings.resync_seconds
    return min(outcome.retry_after, settings.resync_seconds)


async def sleep_until_woken(
    wakeup: asyncio.Event, stopped: StopSignal, seconds: float | None
) -> None:
    """Sleep for `seconds` (None: no limit), or until woken or stopped."""
    woken = asyncio.ensure_future(wakeup.wait())
    stop = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, stop}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        stop.cancel()
