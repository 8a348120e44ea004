"""Use case: process a batch of jobs on an engine. Failures stay with their own job: a bad
image fails alone, an engine error is retried until the job's attempts run out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from ocr_runtime.application.images import ImageLimits, decode_image
from ocr_runtime.application.messages import JobMessage, JobOutcome
from ocr_runtime.application.ports import BlobStore, Image, JobRepository, OcrEngine, OutcomeSink
from ocr_runtime.domain import InvalidImage, JobError, JobErrorCode, OcrResult

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(slots=True)
class BatchReport:
    """What happened to each message of a batch."""

    outcomes: list[JobOutcome] = field(default_factory=list)
    # Messages to deliver again after `retry_delay_s`: their attempt is already counted.
    retries: list[JobMessage] = field(default_factory=list)
    # Job ids with nothing to do: already finished, or unknown to the database.
    skipped: list[str] = field(default_factory=list)
    inference_s: float = 0.0
    images: int = 0


def retry_delay_s(attempt: int, backoff_ms: int) -> float:
    """Delay before delivering attempt `attempt` (2, 3, ...): the backoff doubles each time."""
    return float(backoff_ms) / 1000.0 * float(2 ** max(attempt - 2, 0))


def _unique(messages: Sequence[JobMessage]) -> list[JobMessage]:
    seen: dict[str, JobMessage] = {}
    for message in messages:
        seen.setdefault(message.job_id, message)
    return list(seen.values())


class BatchProcessor:
    """Runs batches through the engine on one dedicated thread (engines are not thread-safe
    and must never run on the event loop). Without a repository (writer mode: workers do no
    database work), attempts come from the messages themselves."""

    def __init__(
        self,
        engine: OcrEngine,
        blobs: BlobStore,
        sink: OutcomeSink,
        limits: ImageLimits,
        *,
        max_attempts: int,
        repository: JobRepository | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._engine = engine
        self._blobs = blobs
        self._sink = sink
        self._limits = limits
        self._max_attempts = max_attempts
        self._repository = repository
        self._executor = executor

    async def process(self, messages: Sequence[JobMessage]) -> BatchReport:
        """Deliver the outcomes to the sink and return the report. Raises only when the
        repository, the blob store or the sink fail: then nothing was acknowledged and the
        whole batch should be delivered again."""
        report = BatchReport()
        attempts = await self._start(_unique(messages), report)
        active = [m for m in _unique(messages) if m.job_id in attempts]
        blobs = await self._blobs.get_many([m.blob_id for m in active]) if active else {}
        runnable: list[tuple[JobMessage, bytes]] = []
        for message in active:
            attempt = attempts[message.job_id]
            data = blobs.get(message.blob_id)
            if attempt > self._max_attempts:
                report.outcomes.append(
                    _failed(
                        message,
                        JobErrorCode.ATTEMPTS_EXHAUSTED,
                        f"gave up after {attempt - 1} attempts",
                    )
                )
            elif data is None:
                report.outcomes.append(
                    _failed(message, JobErrorCode.INVALID_IMAGE, "the image of this job is gone")
                )
            else:
                runnable.append((message, data))
        await self._run_engine(runnable, attempts, report)
        if report.outcomes:
            await self._sink.deliver(report.outcomes)
        if report.retries and self._repository is not None:
            await self._repository.requeue([m.job_id for m in report.retries])
        return report

    async def _start(self, messages: list[JobMessage], report: BatchReport) -> dict[str, int]:
        """Mark the jobs running; return the attempt number of each job to work on."""
        if self._repository is None:
            return {m.job_id: m.attempt for m in messages}
        jobs = await self._repository.mark_running([m.job_id for m in messages])
        attempts: dict[str, int] = {}
        for message in messages:
            job = jobs.get(message.job_id)
            if job is None or job.status.is_terminal:
                report.skipped.append(message.job_id)
            else:
                attempts[message.job_id] = max(job.attempts, message.attempt)
        return attempts

    async def _run_engine(
        self,
        runnable: list[tuple[JobMessage, bytes]],
        attempts: dict[str, int],
        report: BatchReport,
    ) -> None:
        if not runnable:
            return
        decoded = await self._off_loop(lambda: [self._decode(data) for _, data in runnable])
        images: list[tuple[JobMessage, Image]] = []
        for (message, _), image in zip(runnable, decoded, strict=True):
            if isinstance(image, InvalidImage):
                logger.warning("undecodable image: %s", image.message,
                               extra={"job_id": message.job_id})  # fmt: skip
                report.outcomes.append(_failed(message, JobErrorCode.INVALID_IMAGE, image.message))
            else:
                images.append((message, image))
        if not images:
            return
        started = time.perf_counter()
        results = await self._recognize([image for _, image in images])
        report.inference_s = time.perf_counter() - started
        report.images = len(images)
        for (message, _), result in zip(images, results, strict=True):
            if isinstance(result, OcrResult):
                report.outcomes.append(_succeeded(message, result))
            elif attempts[message.job_id] < self._max_attempts:
                logger.warning("inference failed, will retry: %s", result,
                               extra={"job_id": message.job_id})  # fmt: skip
                report.retries.append(message.next_attempt())
            else:
                logger.error("inference failed on the last attempt: %s", result,
                             extra={"job_id": message.job_id})  # fmt: skip
                report.outcomes.append(
                    _failed(
                        message, JobErrorCode.ENGINE_ERROR, f"{type(result).__name__}: {result}"
                    )
                )

    def _decode(self, data: bytes) -> Image | InvalidImage:
        try:
            return decode_image(data, self._limits)
        except InvalidImage as exc:
            return exc

    async def _recognize(self, images: list[Image]) -> list[OcrResult | Exception]:
        """The whole batch at once; if that fails, each image alone, so one bad image does
        not fail its neighbours."""
        try:
            results = await self._off_loop(lambda: self._engine.recognize_batch(images))
            if len(results) != len(images):
                raise RuntimeError(f"engine returned {len(results)} results for {len(images)}")
            return list(results)
        except Exception as exc:
            if len(images) == 1:
                return [exc]
            logger.warning("batch inference failed (%s); retrying image by image", exc)
        return [await self._recognize_one(image) for image in images]

    async def _recognize_one(self, image: Image) -> OcrResult | Exception:
        try:
            results = await self._off_loop(lambda: self._engine.recognize_batch([image]))
            if len(results) != 1:
                raise RuntimeError(f"engine returned {len(results)} results for 1 image")
            return results[0]
        except Exception as exc:
            return exc

    async def _off_loop(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)


def _succeeded(message: JobMessage, result: OcrResult) -> JobOutcome:
    return JobOutcome(
        job_id=message.job_id,
        finished_at=datetime.now(UTC),
        result=result,
        submitted_at=message.submitted_at,
        blob_id=message.blob_id,
    )


def _failed(message: JobMessage, code: JobErrorCode, text: str) -> JobOutcome:
    return JobOutcome(
        job_id=message.job_id,
        finished_at=datetime.now(UTC),
        error=JobError(code, text),
        submitted_at=message.submitted_at,
        blob_id=message.blob_id,
    )
