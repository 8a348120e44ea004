"""The advisor's kopf daemon: one loop per OCRServing that evaluates every
`spec.advisor.intervalSeconds`, writes its status fields, posts Events and, under Auto or on an
approval under Recommend, moves `status.activeMode` and runs the operator's reconcile, which
applies the new mode with the safe ordering.

A daemon (not a timer) because the interval is per resource and may change with the spec.
Prometheus is queried outside the resource's lock; the status is read again and written
under it, so an evaluation never overwrites a reconcile's view of the active mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from ocr_operator import API_GROUP, API_VERSION, PLURAL
from ocr_operator.advisor.backpressure import CapAction
from ocr_operator.advisor.evaluate import evaluate
from ocr_operator.advisor.metrics import Observation, PrometheusSource
from ocr_operator.advisor.policy import Action
from ocr_operator.advisor.queries import StackRef, resolve_queries
from ocr_operator.advisor.report import build_report
from ocr_operator.apply import Body, KubeError, Owner
from ocr_operator.conditions import has_been_ready
from ocr_operator.handlers import context_from, served_of, sleep_until_woken
from ocr_operator.model import OCRServingSpec
from ocr_operator.reconcile import ReconcileContext, reconcile
from ocr_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

# When the spec cannot be read at all (the reconcile reports why), look again this often.
_IDLE_SECONDS = 30.0


def register_advisor(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    source: PrometheusSource | None = None,
) -> None:
    """Register the advisor's daemon; call after `ocr_operator.handlers.register`, whose
    startup handler creates the context the daemon uses."""
    prometheus = source or PrometheusSource()

    @kopf.on.cleanup(registry=registry)
    async def _close_prometheus(**_: Any) -> None:
        prometheus.close()

    @kopf.daemon(
        API_GROUP, API_VERSION, PLURAL, id="advisor", registry=registry,
        cancellation_timeout=5.0,
    )  # fmt: skip
    async def _advise(
        name: str,
        namespace: str | None,
        body: kopf.Body,
        memo: kopf.Memo,
        stopped: kopf.DaemonStopped,
        **_: Any,
    ) -> None:
        await _until_first_evaluation(body, memo, stopped)
        while not stopped:
            interval = _IDLE_SECONDS
            try:
                interval = await evaluate_once(
                    context_from(memo), prometheus, namespace or "", body, settings
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad evaluation must not end the loop: log and go on
                log.exception("advisor evaluation of %s/%s failed", namespace, name)
            await stopped.wait(interval)


async def _until_first_evaluation(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped
) -> None:
    """One interval after the start, and once the stack has been Ready: a stack still being
    created has no window of metrics to judge, and 200 stacks created together would
    otherwise all be queried and written while the apiserver is busy creating them. The
    resource's events signal it (`served_of`): waiting reads nothing and polls nothing."""
    await stopped.wait(interval_of(body))
    if not stopped and not has_been_ready(body):
        await sleep_until_woken(served_of(memo), stopped, seconds=None)


def interval_of(body: Mapping[str, Any]) -> float:
    """The resource's `spec.advisor.intervalSeconds` (an unreadable spec: the idle wait)."""
    try:
        spec = OCRServingSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return _IDLE_SECONDS
    return float(spec.advisor.interval_seconds)


async def evaluate_once(
    ctx: ReconcileContext,
    source: PrometheusSource,
    namespace: str,
    body: Mapping[str, Any],
    settings: OperatorSettings,
) -> float:
    """One evaluation of one OCRServing; returns the seconds until the next one. `body`:
    kopf's live copy of the resource, kept current by its watch; what to query comes from
    it without a read, and the status is read fresh before it is written."""
    name = str(body["metadata"]["name"])
    if body["metadata"].get("deletionTimestamp"):
        return _IDLE_SECONDS
    try:
        spec = OCRServingSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return _IDLE_SECONDS
    advisor = spec.advisor
    if spec.paused:
        return float(advisor.interval_seconds)
    now = datetime.now(UTC)
    url = advisor.prometheus_url or settings.prometheus_url
    observation = None
    if url is not None:
        stack = StackRef(
            namespace=namespace,
            name=name,
            consumer_group=spec.kafka.consumer_group,
            writer_group=spec.kafka.writer_group,
            jobs_topic=spec.kafka.topics.jobs,
            results_topic=spec.kafka.topics.results,
        )
        queries = resolve_queries(advisor, stack)
        observation = await source.observe(url, queries, now, advisor.query_timeout_seconds)
    owner = Owner(name, namespace, body["metadata"]["uid"])
    async with ctx.lock(owner.uid):
        applied = await _record(ctx, owner, now, observation, live=body)
    if applied:
        await _reconcile_now(ctx, namespace, name)
    return float(advisor.interval_seconds)


async def _record(
    ctx: ReconcileContext,
    owner: Owner,
    now: datetime,
    observation: Observation | None,
    *,
    live: Mapping[str, Any],
) -> bool:
    """Fold the observation into the freshly read status and write it; True if it moved
    the active mode or changed the replica cap. `live`: kopf's copy, which stands in for
    the read once it shows the last status write (a reconcile's too)."""
    body = await ctx.kube.get_own(owner.namespace, owner.name, live)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return False
    try:
        spec = OCRServingSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return False
    raw_status: Body = body.get("status") or {}
    evaluation = evaluate(spec, raw_status, body["metadata"], now, observation)
    report = build_report(evaluation, raw_status, body["metadata"].get("generation"))
    try:
        await ctx.kube.patch_status(owner.namespace, owner.name, report.patch)
    except KubeError as error:
        if error.status == 404:  # deleted meanwhile
            return False
        raise
    ctx.metrics.evaluated(owner.namespace, owner.name, evaluation)
    for event in report.events:
        with contextlib.suppress(KubeError):  # events are best effort
            await ctx.kube.event(owner, event.warning, event.reason.value, event.message)
    # A new or released replica cap changes the rendered autoscaler: reconcile at once too.
    capped = evaluation.cap.action in (CapAction.SET, CapAction.RELEASE)
    return evaluation.plan.action is Action.APPLY or capped


async def _reconcile_now(ctx: ReconcileContext, namespace: str, name: str) -> None:
    """Apply the new active mode at once; the operator's resync timer finishes any phase that
    has to wait (writer Ready, results drained)."""
    try:
        await reconcile(ctx, namespace, name)
    except KubeError as error:
        log.warning("reconcile after an advisor transition of %s/%s failed: %s; the resync "
                    "timer retries", namespace, name, error)  # fmt: skip
