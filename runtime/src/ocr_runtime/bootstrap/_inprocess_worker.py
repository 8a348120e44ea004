"""The all-in-one's worker: micro-batches from the in-process queue through `BatchProcessor`,
on the same event loop as the API (inference itself runs on the engine's own thread)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from ocr_runtime.adapters.inprocess_queue import InProcessJobQueue
from ocr_runtime.application import BatchProcessor, JobMessage, retry_delay_s
from ocr_runtime.application.ports import OutcomeSink
from ocr_runtime.core.settings import Settings
from ocr_runtime.worker.batcher import MicroBatcher
from ocr_runtime.worker.metrics import DataPlaneMetrics

log = logging.getLogger(__name__)

_FAILURE_BACKOFF_S = 1.0


class InProcessWorker:
    def __init__(
        self,
        settings: Settings,
        queue: InProcessJobQueue,
        processor: BatchProcessor,
        sink: OutcomeSink,
        metrics: DataPlaneMetrics,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._processor = processor
        self._sink = sink
        self._metrics = metrics
        self._batcher = MicroBatcher(
            queue.take,
            max_size=settings.batch_max_size,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            max_cost=settings.batch_max_pixels,
            cost=lambda message: message.pixels,
        )
        self._task: asyncio.Task[None] | None = None
        self._consuming = False  # past the model wait: there may be a batch in flight

    async def start(self, model_loaded: Awaitable[None]) -> None:
        """Start consuming once `model_loaded` completes (never, if loading fails)."""
        self._task = asyncio.create_task(self._run(model_loaded), name="inprocess-worker")

    async def aclose(self, drain_s: float) -> None:
        """Stop taking jobs, give the batch in flight `drain_s` to finish, then stop."""
        await self._batcher.stop_fetching()
        if self._task is not None and self._consuming:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), drain_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._batcher.aclose()

    async def _run(self, model_loaded: Awaitable[None]) -> None:
        try:
            await model_loaded
        except Exception:
            return  # logged by the loader; readiness stays failing, jobs stay queued
        self._consuming = True
        await self._batcher.start()
        while (batch := await self._batcher.next_batch()) is not None:
            self._metrics.batch_size.observe(len(batch.items))
            self._metrics.batch_wait.observe(batch.waited_s)
            await self._process(list(batch.items))

    async def _process(self, messages: list[JobMessage]) -> None:
        self._metrics.jobs_consumed.inc(len(messages))
        try:
            report = await self._processor.process(messages, self._sink)
        except Exception:
            # Storage failed: nothing was recorded; every job of the batch goes around again.
            log.exception("batch of %d failed; redelivering", len(messages))
            self._metrics.batch_retries.inc()
            for message in messages:
                self._queue.redeliver_later(message, _FAILURE_BACKOFF_S)
            return
        for retry in report.retries:
            delay = retry_delay_s(retry.attempt, self._settings.retry_backoff_ms)
            self._queue.redeliver_later(retry, delay)
