"""The inference worker's batch handler (standard, batched and writer modes alike; only the
batch limits and the outcome sink differ).

For each batch: poison records go to the dead-letter topic; then the jobs go through the
`BatchProcessor` one step at a time, and each step that touches storage is retried on its own
while its errors are transient (database or broker away): claiming the jobs, reading their
images, delivering their outcomes. Inference runs once per attempt, whatever the sink does,
and only an engine failure or a process crash counts an attempt.

- Jobs found running when delivered (their previous attempt died with its process) run one
  at a time after the batch, each outcome delivered before the next one starts: a job that
  kills the process costs only itself an attempt.
- A job that ends failed for good is dead-lettered *before* its failure is recorded: a
  duplicate dead letter is possible, a missing one is not.
- Outcomes that keep losing lock races in the database are delivered in halves.
- Outcomes the sink refuses for a non-transient reason are delivered one by one; the one
  that is refused alone is dead-lettered and recorded as a small `unwritable` failure.

`EngineCalls.ONE_JOB_AT_A_TIME` (standard mode) keeps the engine at one job per call but
shares the storage round trips of the jobs delivered together: one claim, one image read,
and one outcome transaction per `flush_after_s` of engine time."""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from ocr_runtime.application import BatchProcessor, JobMessage, JobOutcome
from ocr_runtime.application.ports import OutcomeSink
from ocr_runtime.application.process import BatchReport, Claim, failed_outcome, retry_delay_s
from ocr_runtime.application.stream import DeadLetter, DeadLetterReason, DeadLetterSink
from ocr_runtime.domain import JobErrorCode
from ocr_runtime.worker.consume import Decoded
from ocr_runtime.worker.metrics import DataPlaneMetrics
from ocr_runtime.worker.retry import (
    CONFLICTS_BEFORE_SPLIT,
    ConflictsPersistError,
    RetryPolicy,
    retry,
    retry_transient,
)

log = logging.getLogger(__name__)

STAGE = "worker"
R = TypeVar("R")
# Failed outcomes that mean "we tried and gave up", as opposed to a bad image: dead-lettered.
_GIVE_UP = {
    JobErrorCode.ENGINE_ERROR: DeadLetterReason.ATTEMPTS_EXHAUSTED,
    JobErrorCode.ATTEMPTS_EXHAUSTED: DeadLetterReason.ATTEMPTS_EXHAUSTED,
    JobErrorCode.STORAGE_ERROR: DeadLetterReason.UNREADABLE,
}


class EngineCalls(enum.Enum):
    """How the jobs handed over together meet the engine."""

    WHOLE_BATCH = "whole-batch"  # batched and writer modes: one engine call for them all
    ONE_JOB_AT_A_TIME = "one-job-at-a-time"  # standard mode: one engine call per job


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
        engine_calls: EngineCalls = EngineCalls.WHOLE_BATCH,
        flush_after_s: float = 0.02,
    ) -> None:
        self._engine_calls = engine_calls
        self._flush_after_s = flush_after_s
        self._processor = processor
        self._sink = sink
        self._dead_letters = dead_letters
        self._policy = policy
        self._metrics = metrics
        self._backoff_ms = retry_backoff_ms
        self._jobs: dict[str, Decoded[JobMessage]] = {}

    async def __call__(self, items: Sequence[Decoded[JobMessage]]) -> None:
        self._metrics.jobs_consumed.inc(len(items))
        poison = [
            DeadLetter(i.delivery, DeadLetterReason.POISON, i.problem or "undecodable", STAGE)
            for i in items
            if i.message is None
        ]
        await self._dead_letter(poison)
        self._jobs = {i.message.job_id: i for i in items if i.message is not None}
        if not self._jobs:
            return
        if self._engine_calls is EngineCalls.WHOLE_BATCH:
            self._metrics.batch_size.observe(len(self._jobs))
        pending = [item.message for item in self._jobs.values() if item.message is not None]
        while pending:
            pending = await self._attempt(pending)
            if pending:
                await self._back_off(pending)

    async def _back_off(self, retries: list[JobMessage]) -> None:
        """Give the jobs back to the queued status, then wait before their next attempt."""
        self._metrics.batch_retries.inc()
        await self._durable(lambda: self._processor.requeue(retries), "requeue jobs")
        attempt = min(m.attempt for m in retries)
        await asyncio.sleep(retry_delay_s(attempt, self._backoff_ms))

    async def _attempt(self, messages: list[JobMessage]) -> list[JobMessage]:
        """One attempt at each job; returns the jobs whose engine call failed (to retry)."""
        claim = await self._durable(lambda: self._processor.claim(messages), "claim jobs")
        retries = await self._run(claim)
        for suspect in claim.suspects:
            log.warning("job was running when delivered: its last attempt died; running it "
                        "alone", extra=suspect.log_context)  # fmt: skip
            retries += await self._run(await self._claim_one(suspect))
        return retries

    async def _claim_one(self, suspect: JobMessage) -> Claim:
        return await self._durable(lambda: self._processor.claim_one(suspect), "claim a job")

    async def _run(self, claim: Claim) -> list[JobMessage]:
        unreadable: list[JobOutcome] = []
        runnable = claim.runnable
        try:
            blobs = await self._fetch(runnable)
        except Exception:  # permanent: find which images cannot be read, fail only those
            blobs, unreadable = await self._fetch_one_by_one(runnable)
        readable = [(m, a) for m, a in runnable if m.job_id not in {o.job_id for o in unreadable}]
        if self._engine_calls is EngineCalls.ONE_JOB_AT_A_TIME:
            return await self._one_at_a_time(readable, blobs, [*claim.outcomes, *unreadable])
        report: BatchReport = await self._processor.infer(readable, blobs)
        await self._finish([*claim.outcomes, *unreadable, *report.outcomes])
        return report.retries

    async def _one_at_a_time(
        self,
        readable: list[tuple[JobMessage, int]],
        blobs: dict[str, bytes],
        ready: list[JobOutcome],
    ) -> list[JobMessage]:
        """Each job alone in the engine. Finished outcomes wait for their neighbours only
        until `flush_after_s` has passed since the last delivery, then go to the sink in one
        transaction: quick jobs share it, and a slow job's result is delivered right after it
        ends. The offsets are committed by the caller once every outcome is delivered."""
        retries: list[JobMessage] = []
        since = time.monotonic()
        for pair in readable:
            report = await self._processor.infer([pair], blobs)
            self._metrics.batch_size.observe(1)
            ready += report.outcomes
            retries += report.retries
            if time.monotonic() - since >= self._flush_after_s:
                await self._finish(ready)
                ready, since = [], time.monotonic()
        await self._finish(ready)
        return retries

    async def _fetch(self, runnable: list[tuple[JobMessage, int]]) -> dict[str, bytes]:
        return await self._durable(lambda: self._processor.fetch(runnable), "read images")

    async def _fetch_one_by_one(
        self, runnable: list[tuple[JobMessage, int]]
    ) -> tuple[dict[str, bytes], list[JobOutcome]]:
        blobs: dict[str, bytes] = {}
        unreadable: list[JobOutcome] = []
        for pair in runnable:
            try:
                blobs |= await self._fetch([pair])
            except Exception as exc:
                text = f"the image cannot be read: {type(exc).__name__}: {exc}"[:500]
                log.error(text, extra=pair[0].log_context)
                unreadable.append(failed_outcome(pair[0], JobErrorCode.STORAGE_ERROR, text))
        return blobs, unreadable

    async def _finish(self, outcomes: list[JobOutcome]) -> None:
        if not outcomes:
            return
        letters = [
            DeadLetter(self._jobs[o.job_id].delivery, _GIVE_UP[o.error.code], o.error.message,
                       STAGE, {"job_id": o.job_id})
            for o in outcomes
            if o.error is not None and o.error.code in _GIVE_UP and o.job_id in self._jobs
        ]  # fmt: skip
        await self._dead_letter(letters)
        await self._deliver(outcomes)

    async def _deliver(self, outcomes: list[JobOutcome]) -> None:
        split = CONFLICTS_BEFORE_SPLIT if len(outcomes) > 1 else None
        try:
            await self._durable(lambda: self._sink.deliver(outcomes), "deliver outcomes",
                                max_conflicts=split)  # fmt: skip
            return
        except ConflictsPersistError:
            half = len(outcomes) // 2
            await self._deliver(outcomes[:half])
            await self._deliver(outcomes[half:])
            return
        except Exception as exc:
            if len(outcomes) > 1:
                log.warning("%d outcomes refused (%r); delivering them one by one",
                            len(outcomes), exc)  # fmt: skip
                for outcome in outcomes:  # isolation spends no attempt and runs no engine
                    await self._deliver([outcome])
                return
            refused, problem = outcomes[0], f"{type(exc).__name__}: {exc}"[:500]
        if refused.error is not None and refused.error.code is JobErrorCode.UNWRITABLE:
            log.error("even the failure of an unwritable job is refused: %s", problem,
                      extra=refused.log_context)  # fmt: skip
            return
        log.error("outcome refused: %s", problem, extra=refused.log_context)
        item = self._jobs.get(refused.job_id)
        if item is not None:
            letter = DeadLetter(item.delivery, DeadLetterReason.UNWRITABLE, problem, STAGE,
                                {"job_id": refused.job_id})  # fmt: skip
            await self._dead_letter([letter])
        await self._deliver([_unwritable(refused, problem)])

    async def _durable(
        self, work: Callable[[], Awaitable[R]], what: str, max_conflicts: int | None = None
    ) -> R:
        """Retry `work` while it fails for transient reasons; any other error is raised."""
        return await retry_transient(work, self._policy, what=what, max_conflicts=max_conflicts,
                                     on_retry=self._metrics.batch_retries.inc)  # fmt: skip

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        never_give_up = replace(self._policy, max_attempts=sys.maxsize)
        await retry(
            lambda: self._dead_letters.dead_letter(letters), never_give_up, what="dead-letter"
        )
        for letter in letters:
            self._metrics.jobs_dead_lettered.labels(reason=letter.reason.value, stage=STAGE).inc()


def _unwritable(refused: JobOutcome, problem: str) -> JobOutcome:
    message = JobMessage(refused.job_id, refused.blob_id or "", 0, 0, refused.submitted_at or 0.0,
                         request_id=refused.request_id)  # fmt: skip
    text = f"the database refused the result ({problem}); it is in the dead-letter topic"
    return failed_outcome(message, JobErrorCode.UNWRITABLE, text[:500])
