import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ocr_runtime.application import (
    ImageLimits,
    JobCompletions,
    JobMessage,
    QueueFull,
    QueueUnavailable,
    SubmitJob,
    Upload,
    get_job,
    wait_for_job,
)
from ocr_runtime.application.errors import ConflictError, JobNotFound, WaitTimeout
from ocr_runtime.application.submit import ADD_ATTEMPTS
from ocr_runtime.domain import (
    InvalidImage,
    Job,
    JobError,
    JobErrorCode,
    JobStatus,
    UnsupportedMediaType,
)
from tests.runtime.unit.runtime_fakes import (
    FakeBlobStore,
    FakePublisher,
    FakeRepository,
    FullPublisher,
    png_bytes,
)

LIMITS = ImageLimits(max_bytes=5_000_000, max_pixels=5_000_000)


def make(
    publisher: FakePublisher | None = None,
) -> tuple[SubmitJob, FakeRepository, FakeBlobStore, FakePublisher]:
    repo, blobs, pub = FakeRepository(), FakeBlobStore(), publisher or FakePublisher()
    return SubmitJob(repo, blobs, pub, LIMITS, clock=lambda: 123.0), repo, blobs, pub


async def test_submit_stores_blob_and_job_and_publishes() -> None:
    submit, repo, blobs, pub = make()
    job = await submit(Upload(png_bytes(50, 20), "image/png"))
    assert job.status is JobStatus.QUEUED
    stored = repo.jobs[job.job_id]
    assert stored.job_id == job.job_id and stored.published_at is not None  # outbox mark
    assert blobs.blobs[job.blob_id] == png_bytes(50, 20)
    assert [(m.job_id, m.blob_id, m.width, m.height, m.submitted_at) for m in pub.messages] == [
        (job.job_id, job.blob_id, 50, 20, 123.0)
    ]


async def test_large_images_are_validated_off_the_loop_too() -> None:
    submit, repo, _, _ = make()
    job = await submit(Upload(png_bytes(1000, 600)))
    assert (job.width, job.height) == (1000, 600)
    assert job.job_id in repo.jobs


async def test_idempotency_key_returns_the_same_job_once() -> None:
    submit, repo, blobs, pub = make()
    first = await submit(Upload(png_bytes(), idempotency_key="abc"))
    second = await submit(Upload(png_bytes(), idempotency_key="abc"))
    assert second.job_id == first.job_id
    assert len(repo.jobs) == 1 and len(blobs.blobs) == 1 and len(pub.messages) == 1


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (Upload(b"not an image"), InvalidImage),
        (Upload(png_bytes(), "application/zip"), UnsupportedMediaType),
        (Upload(b""), InvalidImage),
    ],
)
async def test_bad_input_stores_nothing(upload: Upload, error: type[Exception]) -> None:
    submit, repo, blobs, pub = make()
    with pytest.raises(error):
        await submit(upload)
    assert not repo.jobs and not blobs.blobs and not pub.messages


async def test_broker_failure_fails_the_job_and_drops_the_image() -> None:
    submit, repo, blobs, _ = make(FakePublisher(failure=ConnectionError("down")))
    with pytest.raises(QueueUnavailable):
        await submit(Upload(png_bytes()))
    [job] = repo.jobs.values()
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.code is JobErrorCode.QUEUE_UNAVAILABLE
    assert not blobs.blobs


class GatedPublisher(FakePublisher):
    """The first two publishes wait for their own gate; the first one then fails (its broker
    request timed out), the others succeed: a request and its client's retry in flight at
    once. Later publishes go straight through."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[asyncio.Event] = []

    async def publish(self, message: JobMessage) -> None:
        if len(self.gates) == 2:
            await super().publish(message)
            return
        gate = asyncio.Event()
        self.gates.append(gate)
        first = len(self.gates) == 1
        await gate.wait()
        if first:
            raise ConnectionError("request timed out")
        await super().publish(message)


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


@pytest.mark.parametrize("retry_lands_first", [True, False])
async def test_a_retry_in_flight_never_gets_202_for_a_job_that_will_not_run(
    retry_lands_first: bool,
) -> None:
    publisher = GatedPublisher()
    submit, repo, _, _ = make(publisher)
    upload = Upload(png_bytes(), idempotency_key="k")
    original = asyncio.create_task(submit(upload))
    await until(lambda: len(publisher.gates) == 1)
    retry = asyncio.create_task(submit(upload))  # the client gave up waiting and retried
    await until(lambda: len(publisher.gates) == 2)
    order = [1, 0] if retry_lands_first else [0, 1]
    for index in order:
        publisher.gates[index].set()
        await asyncio.wait([original, retry][index : index + 1])
    with pytest.raises(QueueUnavailable):
        original.result()
    [job_id] = repo.jobs
    if retry_lands_first:  # the job is in the queue: it stays queued, the retry got it
        assert retry.result().job_id == job_id
        assert repo.jobs[job_id].status is JobStatus.QUEUED
    else:  # the job was failed first: the retry is refused, and the key is free again
        with pytest.raises(QueueUnavailable):
            retry.result()
        assert repo.jobs[job_id].status is JobStatus.FAILED
        again = await submit(upload)
        assert again.job_id != job_id and repo.jobs[again.job_id].status is JobStatus.QUEUED


async def test_full_queue_is_reported_as_such() -> None:
    submit, repo, _, _ = make(FullPublisher())
    with pytest.raises(QueueFull):
        await submit(Upload(png_bytes()))
    assert [j.status for j in repo.jobs.values()] == [JobStatus.FAILED]


async def test_get_job_unknown_raises_not_found() -> None:
    with pytest.raises(JobNotFound) as caught:
        await get_job(FakeRepository(), "nope")
    assert caught.value.http_status == 404


async def test_wait_returns_terminal_job_and_times_out_otherwise() -> None:
    submit, repo, _, _ = make()
    job = await submit(Upload(png_bytes()))
    with pytest.raises(WaitTimeout) as caught:
        await wait_for_job(repo, job.job_id, 0.05)
    assert caught.value.details() == {"job_id": job.job_id}
    repo.jobs[job.job_id] = job.start().fail(JobError(JobErrorCode.ENGINE_ERROR, "x"))
    assert (await wait_for_job(repo, job.job_id, 1.0)).status is JobStatus.FAILED


async def test_completion_signal_wakes_the_waiter_without_polling() -> None:
    submit, repo, _, _ = make()
    job = await submit(Upload(png_bytes()))
    reads = 0
    real_get = repo.get

    async def counting_get(job_id: str) -> Job | None:
        nonlocal reads
        reads += 1
        return await real_get(job_id)

    repo.get = counting_get  # type: ignore[method-assign]
    completions = JobCompletions()
    waiter = asyncio.create_task(wait_for_job(repo, job.job_id, 30.0, completions))
    while reads == 0:
        await asyncio.sleep(0)
    repo.jobs[job.job_id] = job.start().fail(JobError(JobErrorCode.ENGINE_ERROR, "x"))
    completions.notify([job.job_id])
    done = await waiter
    assert done.status is JobStatus.FAILED
    assert reads == 2
    assert not completions._waiters  # the watch was removed


@dataclass
class DeadlockingRepository(FakeRepository):
    """Loses the insert's lock race `losses` times, as InnoDB does under a worker's updates."""

    losses: int = 0
    inserts: int = 0

    async def add(self, job: Job) -> Job:
        self.inserts += 1
        if self.inserts <= self.losses:
            raise ConflictError("Deadlock found when trying to get lock")
        return await super().add(job)


async def test_a_job_row_that_loses_a_lock_race_is_inserted_again() -> None:
    repo, blobs = DeadlockingRepository(losses=2), FakeBlobStore()
    submit = SubmitJob(repo, blobs, FakePublisher(), LIMITS)
    job = await submit(Upload(png_bytes(50, 20), "image/png"))
    assert repo.inserts == 3
    assert repo.jobs[job.job_id].status is JobStatus.QUEUED
    assert list(blobs.blobs) == [job.blob_id]


async def test_a_job_row_that_keeps_losing_is_refused_and_its_image_dropped() -> None:
    repo, blobs = DeadlockingRepository(losses=100), FakeBlobStore()
    submit = SubmitJob(repo, blobs, FakePublisher(), LIMITS)
    with pytest.raises(ConflictError):
        await submit(Upload(png_bytes(50, 20), "image/png"))
    assert repo.inserts == ADD_ATTEMPTS
    assert repo.jobs == {} and blobs.blobs == {}
