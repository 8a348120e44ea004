"""The writer's batch handler (writer mode): results from the result topic go to the database
in one transaction per batch, idempotent on job_id, so a redelivered result changes nothing.

A transient database error is retried without limit (offsets stay uncommitted: nothing is
lost while the database is away). A batch that keeps losing lock races is written in halves:
one transaction of hundreds of rows may never win its race, while each half is likelier to.
A batch that fails for another reason is retried, then written one result at a time so that
only the result the database refuses is dead-lettered.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from ocr_runtime.application import JobOutcome
from ocr_runtime.application.stream import DeadLetter, DeadLetterReason, DeadLetterSink
from ocr_runtime.domain import JobError, JobErrorCode
from ocr_runtime.worker.consume import Decoded
from ocr_runtime.worker.metrics import DataPlaneMetrics
from ocr_runtime.worker.observe import observe_latency
from ocr_runtime.worker.retry import (
    CONFLICTS_BEFORE_SPLIT,
    AttemptsExhaustedError,
    ConflictsPersistError,
    RetryPolicy,
    retry,
    retry_transient,
)

log = logging.getLogger(__name__)

STAGE = "writer"

# Persists outcomes in one transaction; returns how many jobs changed (`RecordOutcomes`).
Record = Callable[[Sequence[JobOutcome]], Awaitable[int]]


class WriterHandler:
    def __init__(
        self,
        record: Record,
        dead_letters: DeadLetterSink,
        policy: RetryPolicy,
        metrics: DataPlaneMetrics,
    ) -> None:
        self._record = record
        self._dead_letters = dead_letters
        self._policy = policy
        self._metrics = metrics

    async def __call__(self, items: Sequence[Decoded[JobOutcome]]) -> None:
        self._metrics.results_consumed.inc(len(items))
        poison = [
            DeadLetter(i.delivery, DeadLetterReason.POISON, i.problem or "undecodable", STAGE)
            for i in items
            if i.message is None
        ]
        await self._dead_letter(poison)
        # A result delivered twice in one batch: keep the first, like the database would.
        first: dict[str, Decoded[JobOutcome]] = {}
        for item in items:
            if item.message is not None:
                first.setdefault(item.message.job_id, item)
        if first:
            await self._write(list(first.values()))

    async def _write(self, items: list[Decoded[JobOutcome]]) -> None:
        outcomes = [i.message for i in items if i.message is not None]
        split = CONFLICTS_BEFORE_SPLIT if len(items) > 1 else None
        try:
            changed = await retry(lambda: self._timed_record(outcomes), self._policy,
                                  what="record outcomes", max_conflicts=split)  # fmt: skip
        except ConflictsPersistError:
            half = len(items) // 2
            log.warning("%d results keep losing lock races; writing them in halves", len(items))
            await self._write(items[:half])
            await self._write(items[half:])
            return
        except AttemptsExhaustedError as exc:
            if len(items) == 1:
                cause = exc.__cause__ or exc
                await self._unwritable(items[0], outcomes[0], f"{type(cause).__name__}: {cause}")
                return
            for item in items:  # find the result the database refuses
                await self._write([item])
            return
        self._metrics.writer_batch_size.observe(len(outcomes))
        self._metrics.results_written.inc(changed)
        observe_latency(self._metrics, outcomes)

    async def _unwritable(
        self, item: Decoded[JobOutcome], refused: JobOutcome, problem: str
    ) -> None:
        """Dead-letter the result first (a duplicate letter is tolerable, a missing one is
        not), then record a small failure in its place, so the caller gets an answer."""
        problem = problem[:500]
        log.error("result refused by the database: %s", problem, extra=refused.log_context)
        letter = DeadLetter(item.delivery, DeadLetterReason.UNWRITABLE, problem, STAGE,
                            {"job_id": refused.job_id})  # fmt: skip
        await self._dead_letter([letter])
        text = f"the database refused the result ({problem}); it is in the dead-letter topic"
        failure = replace(refused, result=None, error=JobError(JobErrorCode.UNWRITABLE, text[:500]))
        try:
            await retry_transient(lambda: self._record([failure]), self._policy,
                                  what="record unwritable")  # fmt: skip
        except Exception:
            log.exception("even the failure of an unwritable result is refused",
                          extra=refused.log_context)  # fmt: skip

    async def _timed_record(self, outcomes: list[JobOutcome]) -> int:
        started = time.perf_counter()
        changed = await self._record(outcomes)
        self._metrics.db_write.labels(operation="record_outcomes").observe(
            time.perf_counter() - started
        )
        return changed

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        never_give_up = replace(self._policy, max_attempts=sys.maxsize)
        await retry(
            lambda: self._dead_letters.dead_letter(letters), never_give_up, what="dead-letter"
        )
        for letter in letters:
            self._metrics.jobs_dead_lettered.labels(reason=letter.reason.value, stage=STAGE).inc()
