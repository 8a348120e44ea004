"""The inference worker's batch handler (standard, batched and writer modes alike; only the
batch limits and the outcome sink differ).

For each batch: poison records go to the dead-letter topic; the jobs go through the
`BatchProcessor` use case, whose outcomes reach the sink (database, or result topic in writer
mode) before this returns. Jobs whose engine call failed are retried in place with backoff
until their attempts run out; a job that ends failed for that reason, or a batch that keeps
failing for a non-transient reason, is dead-lettered. Transient failures (database or broker
away) are retried without limit: the offsets stay uncommitted, so nothing is lost."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from ocr_runtime.application import BatchProcessor, BatchReport, JobMessage, JobOutcome
from ocr_runtime.application.ports import OutcomeSink
from ocr_runtime.application.process import retry_delay_s
from ocr_runtime.application.stream import DeadLetter, DeadLetterReason, DeadLetterSink
from ocr_runtime.domain import JobError, JobErrorCode
from ocr_runtime.worker.consume import Decoded
from ocr_runtime.worker.metrics import DataPlaneMetrics
from ocr_runtime.worker.retry import AttemptsExhaustedError, RetryPolicy, retry

log = logging.getLogger(__name__)

STAGE = "worker"
# Failed outcomes that mean "we tried and gave up", as opposed to a bad image.
_EXHAUSTED_CODES = frozenset({JobErrorCode.ENGINE_ERROR, JobErrorCode.ATTEMPTS_EXHAUSTED})


class InferenceHandler:
    def __init__(
        self,
        processor: BatchProcessor,
        sink: OutcomeSink,
        dead_letters: DeadLetterSink,
        policy: RetryPolicy,
        metrics: DataPlaneMetrics,
        *,
        retry_backoff_ms: int,
    ) -> None:
        self._processor = processor
        self._sink = sink
        self._dead_letters = dead_letters
        self._policy = policy
        self._metrics = metrics
        self._backoff_ms = retry_backoff_ms

    async def __call__(self, items: Sequence[Decoded[JobMessage]]) -> None:
        self._metrics.jobs_consumed.inc(len(items))
        poison = [
            DeadLetter(i.delivery, DeadLetterReason.POISON, i.problem or "undecodable", STAGE)
            for i in items
            if i.message is None
        ]
        await self._dead_letter(poison)
        jobs = {i.message.job_id: i for i in items if i.message is not None}
        if not jobs:
            return
        self._metrics.batch_size.observe(len(jobs))
        pending = [item.message for item in jobs.values() if item.message is not None]
        while pending:
            report = await self._process(pending)
            await self._dead_letter_exhausted(report.outcomes, jobs)
            if not report.retries:
                return
            self._metrics.batch_retries.inc()
            attempt = min(m.attempt for m in report.retries)
            await asyncio.sleep(retry_delay_s(attempt, self._backoff_ms))
            pending = report.retries

    async def _process(self, messages: list[JobMessage]) -> BatchReport:
        try:
            return await retry(
                lambda: self._processor.process(messages),
                self._policy,
                what=f"batch of {len(messages)}",
                on_retry=self._metrics.batch_retries.inc,
            )
        except AttemptsExhaustedError as exc:
            if len(messages) == 1:
                outcome = _exhausted(messages[0], exc)
                log.error("giving up on job %s: %s", outcome.job_id, outcome.error)
                await self._persist(lambda: self._sink.deliver([outcome]), "deliver failure")
                return BatchReport(outcomes=[outcome])
        # Some job makes the whole batch fail: isolate it by processing one at a time.
        merged = BatchReport()
        for message in messages:
            single = await self._process([message])
            merged.outcomes.extend(single.outcomes)
            merged.retries.extend(single.retries)
        return merged

    async def _persist(self, work: Callable[[], Awaitable[None]], what: str) -> None:
        """Only transient errors can stop this (sink or broker away): retry those forever."""
        never_give_up = replace(self._policy, max_attempts=sys.maxsize)
        await retry(work, never_give_up, what=what)

    async def _dead_letter_exhausted(
        self, outcomes: Sequence[JobOutcome], jobs: dict[str, Decoded[JobMessage]]
    ) -> None:
        letters = [
            DeadLetter(jobs[o.job_id].delivery, DeadLetterReason.ATTEMPTS_EXHAUSTED,
                       o.error.message, STAGE, {"job_id": o.job_id})
            for o in outcomes
            if o.error is not None and o.error.code in _EXHAUSTED_CODES and o.job_id in jobs
        ]  # fmt: skip
        await self._dead_letter(letters)

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        await self._persist(lambda: self._dead_letters.dead_letter(letters), "dead-letter")
        for letter in letters:
            self._metrics.jobs_dead_lettered.labels(reason=letter.reason.value, stage=STAGE).inc()


def _exhausted(message: JobMessage, exc: AttemptsExhaustedError) -> JobOutcome:
    cause = exc.__cause__ or exc
    return JobOutcome(
        job_id=message.job_id,
        finished_at=datetime.now(UTC),
        error=JobError(JobErrorCode.ATTEMPTS_EXHAUSTED, f"{type(cause).__name__}: {cause}"[:500]),
        submitted_at=message.submitted_at,
        blob_id=message.blob_id,
    )
