"""The Job aggregate: an OCR request's life, from queued to a terminal status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from ocr_runtime.domain.errors import IllegalTransition
from ocr_runtime.domain.ocr import OcrResult, TextLayer


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})

# Allowed moves. RUNNING -> QUEUED is a retry after a transient error or a worker crash;
# QUEUED -> terminal lets a writer record a result whose "running" mark was never stored
# (writer mode: workers do no database work at all).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED, JobStatus.SUCCEEDED, JobStatus.FAILED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


def statuses_allowing(target: JobStatus) -> frozenset[JobStatus]:
    """Every status a job may leave for `target`: what set-based storage updates filter on."""
    return frozenset(status for status, targets in TRANSITIONS.items() if target in targets)


class JobErrorCode(StrEnum):
    INVALID_IMAGE = "invalid_image"
    ENGINE_ERROR = "engine_error"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    TIMEOUT = "timeout"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    # The job ran, but the database refused its result: a small failure is recorded instead
    # (the full result is in the dead-letter topic), so callers get an answer.
    UNWRITABLE = "unwritable"
    # The image cannot be read for a reason retrying does not fix (permission denied on the
    # blob folder, a read-only or missing mount).
    STORAGE_ERROR = "storage_error"


@dataclass(frozen=True, slots=True)
class JobError:
    code: JobErrorCode
    message: str


def _now() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Job:
    """Immutable: every transition returns a new Job, so callers can compare before and after."""

    job_id: str
    blob_id: str
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    result: OcrResult | None = None
    error: JobError | None = None
    # Scoped: "<scope>/<key>" (scope: the API key's digest, or the client), so that two
    # clients never share a key.
    idempotency_key: str | None = None
    width: int = 0
    height: int = 0
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # When the queue acknowledged the job; None until then (see the outbox sweeper).
    published_at: datetime | None = None
    # SHA-256 of the uploaded bytes, hex: a key replayed with another image is refused.
    image_sha256: str | None = None
    text_layer: TextLayer = TextLayer.IGNORE
    # While a document of several engine calls runs: pages done, pages in all.
    pages_done: int | None = None
    pages: int | None = None

    @classmethod
    def submit(
        cls,
        blob_id: str,
        *,
        width: int,
        height: int,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        image_sha256: str | None = None,
        text_layer: TextLayer = TextLayer.IGNORE,
    ) -> Job:
        return cls(
            job_id=job_id or new_job_id(),
            blob_id=blob_id,
            width=width,
            height=height,
            idempotency_key=idempotency_key,
            image_sha256=image_sha256,
            text_layer=text_layer,
        )

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def unpublished(self) -> bool:
        """Stored but never acknowledged by the queue: nothing will process it unless it is
        published (again)."""
        return self.status is JobStatus.QUEUED and self.published_at is None

    def attempts_left(self, max_attempts: int) -> bool:
        """Whether a failed attempt may be retried: the attempt just made was not the last."""
        return self.attempts < max_attempts

    def _move(self, target: JobStatus) -> None:
        if target not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"job {self.job_id}: {self.status} -> {target} is not allowed")

    def start(self) -> Job:
        """Mark a delivery attempt. Starting a job that already runs counts a new attempt
        (the previous worker died); starting a finished job is a no-op."""
        if self.status.is_terminal:
            return self
        if self.status is JobStatus.RUNNING:
            return replace(self, attempts=self.attempts + 1, started_at=_now())
        self._move(JobStatus.RUNNING)
        return replace(
            self, status=JobStatus.RUNNING, attempts=self.attempts + 1, started_at=_now()
        )

    def succeed(self, result: OcrResult, *, at: datetime | None = None) -> Job:
        if self.status is JobStatus.SUCCEEDED:
            return self  # same completion delivered twice: no-op
        self._move(JobStatus.SUCCEEDED)
        return replace(
            self, status=JobStatus.SUCCEEDED, result=result, error=None, finished_at=at or _now()
        )

    def fail(self, error: JobError, *, at: datetime | None = None) -> Job:
        if self.status is JobStatus.FAILED:
            return self
        self._move(JobStatus.FAILED)
        return replace(self, status=JobStatus.FAILED, error=error, finished_at=at or _now())

    def requeue(self) -> Job:
        """Give a running job back to the queue after a transient error."""
        if self.status is JobStatus.QUEUED:
            return self
        self._move(JobStatus.QUEUED)
        return replace(self, status=JobStatus.QUEUED)
