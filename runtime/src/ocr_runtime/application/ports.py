"""Ports: the outside world as the use cases see it. Each has two real implementations
(SQLite and MySQL, database and filesystem blobs, in-process queue and Kafka, real engine and
test fake)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ocr_runtime.application.messages import JobMessage, JobOutcome
from ocr_runtime.domain import Job, OcrResult

# A decoded image: height x width x 3, RGB, uint8.
Image = npt.NDArray[np.uint8]


class OcrEngine(Protocol):
    """Loaded once at start. `recognize_batch` is blocking: callers run it off the event loop."""

    @property
    def name(self) -> str: ...

    @property
    def loaded(self) -> bool: ...

    def load(self) -> None:
        """Load the model and run one warm-up inference."""

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        """One result per image, in order. Raises if the batch as a whole failed."""


class JobRepository(Protocol):
    async def add(self, job: Job) -> Job:
        """Store a new job. If a job with the same idempotency key exists, return that one."""

    async def get(self, job_id: str) -> Job | None: ...

    async def find_by_idempotency_key(self, key: str) -> Job | None: ...

    async def release_idempotency_key(self, job_id: str) -> None:
        """Free the key of a job that failed only because the queue refused it, so the
        client can submit again under the same key (any other job keeps its key)."""

    async def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]: ...

    async def mark_running(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """Start an attempt on each non-terminal job; return every job found (terminal ones
        unchanged, so the caller can skip work already done)."""

    async def claim(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """Start an attempt on each queued job; return every job found as it was *before*
        (a job found running was left running: a previous attempt died with it)."""

    async def record_outcomes(self, outcomes: Sequence[JobOutcome]) -> int:
        """Persist outcomes in one transaction, idempotent on job_id: a job that is already
        terminal keeps its first outcome. Returns how many jobs changed."""

    async def requeue(self, job_ids: Sequence[str]) -> None:
        """Give running jobs back to the queued status after a transient failure."""

    async def record_progress(self, progress: Mapping[str, tuple[int, int]]) -> None:
        """Pages done and pages in all, of running jobs (job id -> (done, total))."""
        ...

    async def mark_published(self, job_ids: Sequence[str]) -> None:
        """Record that the queue acknowledged these jobs (the outbox's delivery mark)."""

    async def abandon(self, outcome: JobOutcome) -> bool:
        """Fail a job the queue never acknowledged (queued and unpublished); False when it
        was published meanwhile (a retry of the same request got it into the queue)."""

    async def unpublished(self, created_before: datetime, limit: int) -> list[Job]:
        """Queued jobs never marked published, created before `created_before`, oldest
        first: what the outbox sweeper publishes again."""

    async def oldest_unfinished(self) -> datetime | None:
        """Creation time of the oldest job not terminal yet (None when there is none)."""

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store bytes, return their blob id."""

    async def get_many(self, blob_ids: Sequence[str]) -> dict[str, bytes]:
        """Missing ids are absent from the result."""

    async def delete_many(self, blob_ids: Sequence[str]) -> None: ...


class JobIntake(Protocol):
    """Where a submitted image and its job are stored together: either both are kept or
    neither (blob and job row in one transaction, or two stores with a clean-up)."""

    async def store(self, image: bytes, make_job: Callable[[str], Job]) -> Job:
        """Store `image`, then the job `make_job(blob_id)` returns. If a job with the same
        idempotency key exists, return that one and keep nothing of this submission."""

    async def mark_published(self, job_id: str) -> None:
        """Record that the queue acknowledged the job (see `JobRepository.mark_published`).
        May return before the mark is written (a lost mark costs one more publish of the
        job by the outbox sweeper, never a lost job)."""


class JobPublisher(Protocol):
    async def publish(self, message: JobMessage) -> None:
        """Return once the message is durable (acks=all for Kafka)."""

    async def ping(self) -> None: ...


class OutcomeSink(Protocol):
    """Where a worker sends finished attempts: the database (standard, batched) or the
    result topic (writer mode)."""

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        """Return once the outcomes are durable."""
