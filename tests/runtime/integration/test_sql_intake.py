"""GroupCommitIntake: image and job stored together; concurrent submissions share a
transaction; idempotency keys resolve to the first job with no orphan blob."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ocr_runtime.adapters.sql import DatabaseBlobStore, GroupCommitIntake, SqlJobRepository
from ocr_runtime.adapters.sql.tables import blob_chunks, jobs
from ocr_runtime.domain import Job

pytestmark = pytest.mark.integration


def maker(key: str | None = None) -> Callable[[str], Job]:
    def make(blob_id: str) -> Job:
        return Job.submit(blob_id, width=8, height=4, idempotency_key=key)

    return make


async def blob_count(engine: AsyncEngine, blob_ids: list[str]) -> int:
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(blob_chunks.c.blob_id.in_(blob_ids))
        return int((await conn.execute(query)).scalar_one())


async def orphan_blobs(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(
            blob_chunks.c.blob_id.not_in(sa.select(jobs.c.blob_id))
        )
        return int((await conn.execute(query)).scalar_one())


async def test_concurrent_submissions_are_all_stored_with_their_images(
    engine: AsyncEngine,
) -> None:
    intake = GroupCommitIntake(engine)
    images = [f"image-{i}".encode() * 10 for i in range(40)]
    stored = await asyncio.gather(*(intake.store(img, maker()) for img in images))
    await intake.aclose()
    assert len({job.job_id for job in stored}) == 40
    found = await SqlJobRepository(engine).get_many([job.job_id for job in stored])
    assert set(found) == {job.job_id for job in stored}
    blobs = await DatabaseBlobStore(engine).get_many([job.blob_id for job in stored])
    assert [blobs[job.blob_id] for job in stored] == images


async def test_one_idempotency_key_in_one_group_makes_one_job_and_one_blob(
    engine: AsyncEngine,
) -> None:
    intake = GroupCommitIntake(engine)
    orphans = await orphan_blobs(engine)
    key = f"intake-{uuid.uuid4().hex}"
    first = await intake.store(b"first", maker(key))
    others = await asyncio.gather(
        *(intake.store(b"again", maker(key)) for _ in range(5)),
        intake.store(b"unrelated", maker()),
    )
    assert {job.job_id for job in others[:5]} == {first.job_id}
    assert others[5].job_id != first.job_id
    assert await orphan_blobs(engine) == orphans  # the duplicates' images were not kept


async def test_large_image_is_stored_in_chunks_on_its_own(engine: AsyncEngine) -> None:
    intake = GroupCommitIntake(engine, chunk_bytes=1000)
    image = bytes(range(256)) * 10
    job = await intake.store(image, maker())
    assert await blob_count(engine, [job.blob_id]) == 3
    assert (await DatabaseBlobStore(engine).get_many([job.blob_id]))[job.blob_id] == image


class _RefusingMarks(SqlJobRepository):
    async def mark_published(self, job_ids: Sequence[str]) -> None:
        raise OperationalError("UPDATE jobs", {}, Exception(2013, "Lost connection"))


async def test_outbox_marks_are_written_in_the_background_and_flushed_on_close(
    engine: AsyncEngine,
) -> None:
    intake = GroupCommitIntake(engine)
    stored = await asyncio.gather(*(intake.store(b"marked", maker()) for _ in range(30)))
    await asyncio.gather(*(intake.mark_published(job.job_id) for job in stored))
    await intake.aclose()
    found = await SqlJobRepository(engine).get_many([job.job_id for job in stored])
    assert all(not job.unpublished for job in found.values()) and len(found) == 30


class _CountingMarks(SqlJobRepository):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.updates: list[int] = []

    async def mark_published(self, job_ids: Sequence[str]) -> None:
        self.updates.append(len(job_ids))
        await super().mark_published(job_ids)


async def test_marks_that_arrive_one_by_one_share_an_update(engine: AsyncEngine) -> None:
    repository = _CountingMarks(engine)
    # A linger no test could wait out: close must write the marks at once.
    intake = GroupCommitIntake(engine, repository=repository, marks_linger_s=3600)
    stored = [await intake.store(b"one by one", maker()) for _ in range(10)]
    for job in stored:
        await intake.mark_published(job.job_id)
        await asyncio.sleep(0)  # each mark in its own turn of the loop, as requests come
    assert repository.updates == []
    await asyncio.wait_for(intake.aclose(), 10)
    assert repository.updates == [10]
    found = await SqlJobRepository(engine).get_many([job.job_id for job in stored])
    assert not any(job.unpublished for job in found.values()) and len(found) == 10


async def test_a_refused_outbox_mark_fails_no_request_and_leaves_the_job_to_the_sweeper(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    intake = GroupCommitIntake(engine, repository=_RefusingMarks(engine))
    job = await intake.store(b"unmarked", maker())
    await intake.mark_published(job.job_id)  # no error reaches the request
    await intake.aclose()
    found = await SqlJobRepository(engine).get(job.job_id)
    assert found is not None and found.unpublished
    assert "the outbox sweeper will publish them again" in caplog.text
