"""In-memory fakes of the ports, for use-case unit tests only. The repository applies the
domain's own transitions, so it behaves like the SQL one."""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from PIL import Image as PilImage

from ocr_runtime.application import JobMessage, JobOutcome, QueueFull
from ocr_runtime.application.ports import Image
from ocr_runtime.domain import Job, JobStatus, OcrLine, OcrResult


def png_bytes(width: int = 64, height: int = 32, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    PilImage.new("RGB", (width, height), (255, 255, 255)).save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class FakeRepository:
    jobs: dict[str, Job] = field(default_factory=dict)
    progress: list[tuple[str, int, int]] = field(default_factory=list)

    async def add(self, job: Job) -> Job:
        if job.idempotency_key is not None:
            existing = await self.find_by_idempotency_key(job.idempotency_key)
            if existing is not None:
                return existing
        self.jobs[job.job_id] = job
        return job

    async def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def find_by_idempotency_key(self, key: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.idempotency_key == key), None)

    async def release_idempotency_key(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.error is not None and job.status is JobStatus.FAILED:
            self.jobs[job_id] = replace(job, idempotency_key=None)

    async def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        return {i: self.jobs[i] for i in job_ids if i in self.jobs}

    async def record_progress(self, progress: Mapping[str, tuple[int, int]]) -> None:
        for job_id, (done, total) in progress.items():
            job = self.jobs.get(job_id)
            if job is not None and job.status is JobStatus.RUNNING:
                self.jobs[job_id] = replace(job, pages_done=done, pages=total)
                self.progress.append((job_id, done, total))

    async def mark_running(self, job_ids: Sequence[str]) -> dict[str, Job]:
        for job_id in job_ids:
            if job_id in self.jobs:
                self.jobs[job_id] = self.jobs[job_id].start()
        return await self.get_many(job_ids)

    async def claim(self, job_ids: Sequence[str]) -> dict[str, Job]:
        before = await self.get_many(job_ids)
        for job_id, job in before.items():
            if job.status is JobStatus.QUEUED:
                self.jobs[job_id] = job.start()
        return before

    async def record_outcomes(self, outcomes: Sequence[JobOutcome]) -> int:
        changed = 0
        for outcome in outcomes:
            job = self.jobs.get(outcome.job_id)
            if job is None or job.status.is_terminal:
                continue
            if outcome.result is not None:
                job = job.succeed(outcome.result, at=outcome.finished_at)
            elif outcome.error is not None:
                job = job.fail(outcome.error, at=outcome.finished_at)
            self.jobs[outcome.job_id] = job
            changed += 1
        return changed

    async def requeue(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.status is JobStatus.RUNNING:
                self.jobs[job_id] = job.requeue()

    async def mark_published(self, job_ids: Sequence[str]) -> None:
        now = datetime.now(UTC)
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.published_at is None:
                self.jobs[job_id] = replace(job, published_at=now)

    async def abandon(self, outcome: JobOutcome) -> bool:
        job = self.jobs.get(outcome.job_id)
        if job is None or not job.unpublished or outcome.error is None:
            return False
        self.jobs[job.job_id] = job.fail(outcome.error, at=outcome.finished_at)
        return True

    async def unpublished(self, created_before: datetime, limit: int) -> list[Job]:
        found = [j for j in self.jobs.values() if j.unpublished and j.created_at < created_before]
        return sorted(found, key=lambda j: j.created_at)[:limit]

    async def oldest_unfinished(self) -> datetime | None:
        open_jobs = [j.created_at for j in self.jobs.values() if not j.status.is_terminal]
        return min(open_jobs, default=None)

    async def ping(self) -> None:
        return None


@dataclass
class FakeBlobStore:
    blobs: dict[str, bytes] = field(default_factory=dict)

    async def put(self, data: bytes) -> str:
        blob_id = uuid.uuid4().hex
        self.blobs[blob_id] = data
        return blob_id

    async def get_many(self, blob_ids: Sequence[str]) -> dict[str, bytes]:
        return {i: self.blobs[i] for i in blob_ids if i in self.blobs}

    async def delete_many(self, blob_ids: Sequence[str]) -> None:
        for blob_id in blob_ids:
            self.blobs.pop(blob_id, None)


@dataclass
class FakePublisher:
    messages: list[JobMessage] = field(default_factory=list)
    failure: Exception | None = None

    async def publish(self, message: JobMessage) -> None:
        if self.failure is not None:
            raise self.failure
        self.messages.append(message)

    async def ping(self) -> None:
        if self.failure is not None:
            raise self.failure


class FullPublisher(FakePublisher):
    async def publish(self, message: JobMessage) -> None:
        raise QueueFull("full")


@dataclass
class FakeEngine:
    """Reads each image's width as its text; images whose width is in `poison` make the
    engine raise, like a model crashing on one input."""

    poison: set[int] = field(default_factory=set)
    calls: list[int] = field(default_factory=list)
    broken: bool = False

    @property
    def name(self) -> str:
        return "fake"

    @property
    def loaded(self) -> bool:
        return True

    def load(self) -> None:
        return None

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        self.calls.append(len(images))
        if self.broken or any(image.shape[1] in self.poison for image in images):
            raise RuntimeError("engine crashed")
        box = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
        return [
            OcrResult(lines=(OcrLine(text=str(image.shape[1]), confidence=0.9, box=box),))
            for image in images
        ]


@dataclass
class ListSink:
    delivered: list[JobOutcome] = field(default_factory=list)

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        self.delivered.extend(outcomes)
