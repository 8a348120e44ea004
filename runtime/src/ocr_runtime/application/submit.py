"""Use case: submit an OCR job (validate, store the image, store the job, enqueue it)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime

from ocr_runtime.application.errors import ConflictError, IdempotencyKeyReused, QueueUnavailable
from ocr_runtime.application.images import (
    ImageInfo,
    ImageLimits,
    check_media_type,
    finish_inspection,
    open_image,
)
from ocr_runtime.application.messages import JobOutcome
from ocr_runtime.application.outbox import job_message
from ocr_runtime.application.pdf import inspect_pdf, is_pdf
from ocr_runtime.application.ports import BlobStore, JobIntake, JobPublisher, JobRepository
from ocr_runtime.core.logging import request_id_var
from ocr_runtime.domain import Job, JobError, JobErrorCode, TextLayer, new_job_id

logger = logging.getLogger(__name__)

# Images up to this many pixels decode on the event loop (about a millisecond); bigger ones go
# to a thread so they never stall other requests.
INLINE_DECODE_MAX_PIXELS = 262_144


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    content_type: str | None = None
    idempotency_key: str | None = None
    # Who owns the key: the verified API key's digest, or the client when auth is off.
    scope: str | None = None
    text_layer: TextLayer = TextLayer.IGNORE

    @property
    def scoped_key(self) -> str | None:
        if self.idempotency_key is None or self.scope is None:
            return self.idempotency_key
        return f"{self.scope}/{self.idempotency_key}"


def _refused_by_queue(job: Job) -> bool:
    return job.error is not None and job.error.code is JobErrorCode.QUEUE_UNAVAILABLE


# Inserts of one job row before the API answers 503 (each lost a lock race).
ADD_ATTEMPTS = 5
ADD_RETRY_DELAY_S = 0.005


class SeparateStores:
    """`JobIntake` over a blob store and a job repository that commit separately (filesystem
    blobs, or any pair without a shared transaction)."""

    def __init__(self, repository: JobRepository, blobs: BlobStore) -> None:
        self._repository = repository
        self._blobs = blobs

    async def store(self, image: bytes, make_job: Callable[[str], Job]) -> Job:
        blob_id = await self._blobs.put(image)
        job = make_job(blob_id)
        try:
            stored = await self._add(job)
        except ConflictError:
            # rolled back every time: no job will ever read the image (after other errors
            # the row may have been written, and the outbox would publish it)
            await self._blobs.delete_many([blob_id])
            raise
        if stored.job_id != job.job_id:
            # A concurrent request with the same key won the race: keep its job only.
            await self._blobs.delete_many([blob_id])
        return stored

    async def mark_published(self, job_id: str) -> None:
        await self._repository.mark_published([job_id])

    async def _add(self, job: Job) -> Job:
        """The insert, again after a lost lock race: a job row can deadlock with a worker's
        status updates (InnoDB gap locks on the status index), and the server rolls it back.
        Answering 503 for that would make the client do what this does, slower."""
        for attempt in range(1, ADD_ATTEMPTS + 1):
            try:
                return await self._repository.add(job)
            except ConflictError:
                if attempt == ADD_ATTEMPTS:
                    raise
                await asyncio.sleep(ADD_RETRY_DELAY_S * attempt)
        raise AssertionError("unreachable")


class SubmitJob:
    def __init__(
        self,
        repository: JobRepository,
        blobs: BlobStore,
        publisher: JobPublisher,
        limits: ImageLimits,
        *,
        clock: Callable[[], float] = time.time,
        intake: JobIntake | None = None,
        decode_executor: Executor | None = None,
    ) -> None:
        """`intake`: stores image and job together (default: `blobs`, then `repository`)."""
        self._repository = repository
        self._blobs = blobs
        self._intake = intake if intake is not None else SeparateStores(repository, blobs)
        self._publisher = publisher
        self._limits = limits
        self._clock = clock
        # Where big images are decoded (None: asyncio's default pool).
        self._decode_executor = decode_executor

    async def __call__(self, upload: Upload) -> Job:
        """Return the queued job (or the earlier job of the same idempotency key). Raises an
        `OcrError` for bad input, having stored nothing."""
        key = upload.scoped_key
        digest = hashlib.sha256(upload.data).hexdigest() if key is not None else None
        if key is not None:
            existing = await self._repository.find_by_idempotency_key(key)
            if existing is not None and _refused_by_queue(existing):
                # Nothing was ever done for it: the key is free to submit again.
                await self._repository.release_idempotency_key(existing.job_id)
            elif existing is not None:
                return await self._replay(existing, digest)
        check_media_type(upload.content_type)
        info = await self._inspect(upload.data)
        job_id = new_job_id()
        stored = await self._intake.store(
            upload.data,
            lambda blob_id: Job.submit(blob_id, width=info.width, height=info.height,
                                       idempotency_key=key, job_id=job_id, image_sha256=digest,
                                       text_layer=upload.text_layer),
        )  # fmt: skip
        if stored.job_id != job_id:
            # A concurrent request with the same key won the race.
            return await self._replay(stored, digest)
        await self._publish(stored)
        return stored

    async def _replay(self, existing: Job, digest: str | None) -> Job:
        if existing.image_sha256 is not None and existing.image_sha256 != digest:
            raise IdempotencyKeyReused(existing.job_id)
        if existing.unpublished:
            # Stored but never acknowledged by the queue (the request that stored it died,
            # or its publish failed): publishing again is safe, workers are idempotent, and
            # returning it unpublished would be a lie.
            await self._publish(existing)
            # The request that stored it may have given up on its own publish meanwhile
            # and failed the job: never answer 202 for a job that will not run.
            current = await self._repository.get(existing.job_id)
            if current is not None and _refused_by_queue(current):
                raise QueueUnavailable("the job queue is unavailable; retry later")
        return existing

    async def _inspect(self, data: bytes) -> ImageInfo:
        loop = asyncio.get_running_loop()
        if is_pdf(data):
            # Off the loop: PDFium is held by one thread at a time (a worker may be rendering).
            return await loop.run_in_executor(self._decode_executor, inspect_pdf, data,
                                              self._limits)  # fmt: skip
        image, info = open_image(data, self._limits)
        if info.pixels <= INLINE_DECODE_MAX_PIXELS:
            finish_inspection(image, info)
        else:
            await loop.run_in_executor(self._decode_executor, finish_inspection, image, info)
        return info

    async def _publish(self, job: Job) -> None:
        message = job_message(job, submitted_at=self._clock(), request_id=request_id_var.get())
        try:
            await self._publisher.publish(message)
        except QueueUnavailable:
            await self._abandon(job, "the queue refused the job")
            raise
        except Exception as exc:  # any broker failure: the job must not stay queued forever
            logger.exception("publishing job failed", extra={"job_id": job.job_id})
            await self._abandon(job, f"the queue is unavailable: {type(exc).__name__}")
            raise QueueUnavailable("the job queue is unavailable; retry later") from exc
        await self._mark_published(job)

    async def _mark_published(self, job: Job) -> None:
        try:
            await self._intake.mark_published(job.job_id)
        except Exception:
            # The job is queued already; without the mark the outbox sweeper publishes it
            # once more, which workers shrug off (idempotent on job_id).
            logger.warning("marking a job published failed", exc_info=True,
                           extra={"job_id": job.job_id})  # fmt: skip

    async def _abandon(self, job: Job, reason: str) -> None:
        error = JobError(JobErrorCode.QUEUE_UNAVAILABLE, reason)
        outcome = JobOutcome(job_id=job.job_id, finished_at=datetime.now(UTC), error=error)
        try:
            # A retry of this request may have published the job meanwhile: then it stays.
            if await self._repository.abandon(outcome):
                await self._blobs.delete_many([job.blob_id])
        except Exception:
            # The job stays queued and unpublished: the outbox sweeper publishes it later.
            logger.warning("recording a refused publish failed; the outbox will publish it",
                           exc_info=True, extra={"job_id": job.job_id})  # fmt: skip
