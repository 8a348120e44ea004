"""The all-in-one's worker: the production consume loop (`ConsumeLoop`) and inference handler
(`InferenceHandler`: step retries, suspects run alone, dead letters, unwritable outcomes) over
the in-process queue, on the same event loop as the API (inference runs on the engine's own
thread). One pipeline for every deployment."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from ocr_runtime.adapters.inprocess_queue import (
    InProcessJobQueue,
    InProcessRecordSource,
    LoggedDeadLetters,
)
from ocr_runtime.application import BatchProcessor, JobMessage
from ocr_runtime.application.ports import OutcomeSink
from ocr_runtime.bootstrap._dataplane import retry_policy
from ocr_runtime.core.settings import Settings
from ocr_runtime.worker import BatchLimits, ConsumeLoop, InferenceHandler
from ocr_runtime.worker.metrics import DataPlaneMetrics

log = logging.getLogger(__name__)

GROUP = "all-in-one"


class InProcessWorker:
    def __init__(
        self,
        settings: Settings,
        queue: InProcessJobQueue,
        processor: BatchProcessor,
        sink: OutcomeSink,
        metrics: DataPlaneMetrics,
    ) -> None:
        handler = InferenceHandler(
            processor, sink, LoggedDeadLetters(), retry_policy(settings), metrics,
            retry_backoff_ms=settings.retry_backoff_ms,
        )  # fmt: skip
        self._loop: ConsumeLoop[JobMessage] = ConsumeLoop(
            InProcessRecordSource(queue),
            decode=JobMessage.from_delivery,
            cost=lambda message: message.pixels,
            handle=handler,
            limits=BatchLimits(
                max_size=settings.batch_max_size,
                max_wait_s=settings.batch_max_wait_ms / 1000,
                max_cost=settings.batch_max_pixels,
            ),
            metrics=metrics,
            group=GROUP,
            revoke_wait_s=settings.drain_seconds,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consuming = False  # past the model wait: there may be a batch in flight

    async def start(self, model_loaded: Awaitable[None]) -> None:
        """Start consuming once `model_loaded` completes (never, if loading fails)."""
        self._task = asyncio.create_task(self._run(model_loaded), name="inprocess-worker")

    async def aclose(self, drain_s: float) -> None:
        """Stop taking jobs, give the batch in flight `drain_s` to finish, then stop."""
        self._stop.set()
        if self._task is not None and self._consuming:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), drain_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, model_loaded: Awaitable[None]) -> None:
        try:
            await model_loaded
        except Exception:
            return  # logged by the loader; readiness stays failing, jobs stay queued
        self._consuming = True
        try:
            await self._loop.run(self._stop)
        except Exception:
            log.exception("the in-process consume loop failed")
