"""Use case: the outbox sweeper. A job row is stored before its message is published, and the
two cannot share a transaction: an API that dies in between (SIGKILL, OOM), or a publish that
fails while recording that failure fails too, leaves a queued job nobody will process. Each
job is marked `published_at` once the queue acknowledged it; the sweeper publishes again every
queued job left unmarked for longer than a bound. Workers are idempotent on job_id, so a job
published twice (the mark was lost, two API replicas swept at once) is still done once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ocr_runtime.application.messages import JobMessage
from ocr_runtime.application.ports import JobPublisher, JobRepository
from ocr_runtime.domain import Job

log = logging.getLogger(__name__)

# A submission publishes within its request (the producer's timeout is 30 s); only jobs left
# unmarked well past that are orphans.
REPUBLISH_AFTER_S = 60.0
SWEEP_INTERVAL_S = 10.0
SWEEP_BATCH = 500


def job_message(
    job: Job, submitted_at: float | None = None, request_id: str | None = None
) -> JobMessage:
    """The queue message of a stored job (`submitted_at` defaults to its creation time)."""
    return JobMessage(
        request_id=request_id,
        job_id=job.job_id,
        blob_id=job.blob_id,
        width=job.width,
        height=job.height,
        submitted_at=job.created_at.timestamp() if submitted_at is None else submitted_at,
        text_layer=job.text_layer,
    )


@dataclass(frozen=True, slots=True)
class SweepReport:
    republished: int
    oldest_unfinished_age_s: float  # 0 when no job is unfinished


class OutboxSweeper:
    def __init__(
        self,
        repository: JobRepository,
        publisher: JobPublisher,
        *,
        republish_after_s: float = REPUBLISH_AFTER_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_sweep: Callable[[SweepReport], None] | None = None,
    ) -> None:
        self._repository = repository
        self._publisher = publisher
        self._after = timedelta(seconds=republish_after_s)
        self._clock = clock
        self._on_sweep = on_sweep

    async def sweep_once(self) -> SweepReport:
        now = self._clock()
        orphans = await self._repository.unpublished(now - self._after, SWEEP_BATCH)
        published: list[str] = []
        for job in orphans:
            try:
                await self._publisher.publish(job_message(job))
            except Exception:
                log.warning("republishing job failed; next sweep retries it",
                            exc_info=True, extra={"job_id": job.job_id})  # fmt: skip
                break  # the queue is away: the rest would fail the same way
            published.append(job.job_id)
            log.warning("republished a job that was stored but never published",
                        extra={"job_id": job.job_id})  # fmt: skip
        if published:
            await self._repository.mark_published(published)
        oldest = await self._repository.oldest_unfinished()
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        report = SweepReport(len(published), age)
        if self._on_sweep is not None:
            self._on_sweep(report)
        return report

    async def run(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """Sweep until cancelled; a failed sweep (database away) is logged and retried."""
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.warning("outbox sweep failed", exc_info=True)
            await asyncio.sleep(interval_s)
