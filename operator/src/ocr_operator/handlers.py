"""kopf handlers: create, update, resume and the resync timer all run the same reconcile."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ocr_operator import API_GROUP, API_VERSION, PLURAL
from ocr_operator.apply import KubeClient, KubeError
from ocr_operator.reconcile import ReconcileContext, reconcile
from ocr_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

MEMO_KEY = "ocr_reconcile_context"


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register the operator's handlers into `registry` (once per registry)."""
    resource = (API_GROUP, API_VERSION, PLURAL)

    @kopf.on.login(registry=registry)
    def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        # Progress and diff-base in annotations under our own prefix: nothing of kopf's is
        # written into status (the CRD's status schema would prune it anyway).
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=API_GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{API_GROUP}/finalizer"
        # kopf would post an Event per retry of a waiting handler; reconcile posts its own
        # Events on changes and errors instead.
        settings.posting.enabled = False
        memo[MEMO_KEY] = ReconcileContext(
            kube=KubeClient.from_environment(), settings=operator_settings
        )

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(memo: kopf.Memo, **_: Any) -> None:
        context = memo.get(MEMO_KEY)
        if isinstance(context, ReconcileContext):
            context.kube.close()

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, registry=registry)
    async def _changed(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
        await run_reconcile(memo, namespace or "", name)

    @kopf.timer(
        *resource,
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        registry=registry,
    )
    async def _resync(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
        await run_reconcile(memo, namespace or "", name)

    operator_settings = settings


def context_from(memo: kopf.Memo) -> ReconcileContext:
    """The reconcile context the startup handler stored (for the advisor's handlers too)."""
    context = memo[MEMO_KEY]
    if not isinstance(context, ReconcileContext):
        raise kopf.PermanentError("operator context missing")
    return context


async def run_reconcile(memo: kopf.Memo, namespace: str, name: str) -> None:
    """Reconcile and translate the outcome into kopf's retry semantics."""
    context = context_from(memo)
    try:
        outcome = await reconcile(context, namespace, name)
    except KubeError as error:
        raise kopf.TemporaryError(
            f"apiserver: {error}", delay=context.settings.error_backoff_seconds
        ) from error
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(outcome.message, delay=outcome.retry_after)
