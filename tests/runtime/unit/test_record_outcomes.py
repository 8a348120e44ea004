from datetime import UTC, datetime

from ocr_runtime.application import JobMessage, JobOutcome, RecordOutcomes
from ocr_runtime.core.settings import BlobRetention
from ocr_runtime.domain import Job, JobError, JobErrorCode, JobStatus, OcrLine, OcrResult
from tests.runtime.unit.runtime_fakes import FakeBlobStore, FakeRepository

BOX = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
RESULT = OcrResult(lines=(OcrLine("x", 0.5, BOX),))
NOW = datetime(2030, 1, 1, tzinfo=UTC)


async def setup() -> tuple[FakeRepository, FakeBlobStore, Job]:
    repo, blobs = FakeRepository(), FakeBlobStore()
    blob_id = await blobs.put(b"img")
    job = await repo.add(Job.submit(blob_id, width=1, height=1))
    return repo, blobs, job


async def test_first_terminal_outcome_wins_and_duplicates_change_nothing() -> None:
    repo, blobs, job = await setup()
    record = RecordOutcomes(repo, blobs)
    ok = JobOutcome(job.job_id, NOW, result=RESULT, blob_id=job.blob_id)
    late = JobOutcome(job.job_id, NOW, error=JobError(JobErrorCode.TIMEOUT, "late"))
    assert await record([ok]) == 1
    assert await record([ok, late]) == 0
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.SUCCEEDED and stored.result == RESULT
    assert stored.finished_at == NOW
    assert not blobs.blobs


async def test_keep_retention_keeps_images() -> None:
    repo, blobs, job = await setup()
    record = RecordOutcomes(repo, blobs, BlobRetention.KEEP)
    await record([JobOutcome(job.job_id, NOW, result=RESULT, blob_id=job.blob_id)])
    assert job.blob_id in blobs.blobs


def test_messages_round_trip_with_new_fields() -> None:
    message = JobMessage("j", "b", 3, 4, 1.5, attempt=2)
    assert JobMessage.from_bytes(message.to_bytes()) == message
    assert (
        JobMessage.from_bytes(
            b'{"job_id":"j","blob_id":"b","width":1,"height":1,"submitted_at":0}'
        ).attempt
        == 1
    )
    outcome = JobOutcome("j", NOW, result=RESULT, blob_id="b", submitted_at=1.0)
    assert JobOutcome.from_bytes(outcome.to_bytes()) == outcome
