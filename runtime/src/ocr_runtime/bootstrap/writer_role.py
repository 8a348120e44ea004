"""`ocr-runtime writer`: the result writer of the writer mode. Consumes the result topic in
batches (`OCR_WRITER_BATCH_MAX_SIZE`, `OCR_WRITER_BATCH_MAX_WAIT_MS`) and records each batch
in one database transaction, idempotent on job_id. Scales independently of the workers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import uvloop

from ocr_contract import Role
from ocr_runtime.adapters.kafka import KafkaDeadLetterPublisher
from ocr_runtime.application import JobOutcome, RecordOutcomes
from ocr_runtime.bootstrap import _dataplane as dp
from ocr_runtime.core.logging import configure_logging
from ocr_runtime.core.settings import Settings
from ocr_runtime.worker import BatchLimits, ConsumeLoop, DataPlaneMetrics, WriterHandler

log = logging.getLogger(__name__)

ROLE = Role.WRITER


def run(settings: Settings) -> int:
    configure_logging(settings.log_level)
    # uvloop, as uvicorn gives the API: the loop's own overhead per record is lower.
    return uvloop.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    metrics = DataPlaneMetrics()
    metrics.runtime_info.labels(
        role=ROLE, mode=settings.mode.value, engine="none", model_version="none"
    ).set(1)
    checks: dict[str, Callable[[], Awaitable[bool]]] = {"consumer": dp.consumer_not_started}
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(dp.serving_probes(settings, checks))
        await dp.prepare_topics(settings)
        storage = await stack.enter_async_context(dp.open_storage(settings))
        checks["database"] = dp.database_check(storage)
        kafka = await stack.enter_async_context(dp.open_producer(settings, ROLE))
        handler = WriterHandler(
            RecordOutcomes(storage.repository, storage.blobs, settings.blob_retention),
            KafkaDeadLetterPublisher(kafka, settings.dead_letter_topic),
            dp.retry_policy(settings),
            metrics,
        )
        loop = ConsumeLoop(
            dp.record_source(
                settings,
                settings.results_topic,
                settings.writer_group,
                ROLE,
                batch_wait_ms=settings.writer_batch_max_wait_ms,
            ),
            decode=JobOutcome.from_delivery,
            cost=lambda _: 1,
            handle=handler,
            limits=BatchLimits(
                max_size=settings.writer_batch_max_size,
                max_wait_s=settings.writer_batch_max_wait_ms / 1000,
                max_cost=settings.writer_batch_max_size,
            ),
            metrics=metrics,
            group=settings.writer_group,
            revoke_wait_s=settings.drain_seconds,
            commit_interval_s=settings.commit_interval_ms / 1000,
        )
        return await dp.run_consumer(loop, settings, metrics, checks)
    return 1  # unreachable: the context manager does not swallow exceptions
