from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ocr_runtime.adapters.sql import DatabaseBlobStore, SqlJobRepository, create_database_engine
from ocr_runtime.adapters.sql._mapping import job_to_row
from ocr_runtime.adapters.sql.tables import jobs as table
from ocr_runtime.application import JobOutcome
from ocr_runtime.domain import (
    Job,
    JobError,
    JobErrorCode,
    JobStatus,
    OcrLine,
    OcrResult,
    TextLayer,
)

pytestmark = pytest.mark.integration

BOX = ((1.5, 2.0), (30.0, 2.0), (30.0, 12.25), (1.5, 12.25))
RESULT = OcrResult(lines=(OcrLine("안녕하세요 hello", 0.875, BOX), OcrLine("두 번째", 0.5, BOX)))
AT = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def new_job(key: str | None = None) -> Job:
    return Job.submit("b" * 32, width=640, height=480, idempotency_key=key)


async def test_add_and_get_round_trip(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    job = await repo.add(new_job())
    stored = await repo.get(job.job_id)
    assert stored is not None
    assert stored.job_id == job.job_id and stored.status is JobStatus.QUEUED
    assert (stored.width, stored.height, stored.attempts) == (640, 480, 0)
    assert abs((stored.created_at - job.created_at).total_seconds()) < 1e-3
    assert await repo.get("0" * 32) is None
    assert stored.text_layer is TextLayer.IGNORE


async def test_the_text_layer_choice_is_stored_and_listed_for_republishing(
    engine: AsyncEngine,
) -> None:
    """The outbox sweeper rebuilds messages from stored jobs: the choice must survive."""
    repo = SqlJobRepository(engine)
    job = await repo.add(Job.submit("c" * 32, width=1, height=1, text_layer=TextLayer.PREFER))
    stored = await repo.get(job.job_id)
    assert stored is not None and stored.text_layer is TextLayer.PREFER
    unpublished = await repo.unpublished(datetime(2100, 1, 1, tzinfo=UTC), limit=1000)
    assert {j.job_id: j.text_layer for j in unpublished}[job.job_id] is TextLayer.PREFER


async def test_idempotency_key_returns_the_first_job(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    key = f"key-{new_job().job_id}"
    first = await repo.add(new_job(key))
    second = await repo.add(new_job(key))
    assert second.job_id == first.job_id
    found = await repo.find_by_idempotency_key(key)
    assert found is not None and found.job_id == first.job_id


async def test_concurrent_adds_with_one_key_make_one_job(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    key = f"race-{new_job().job_id}"
    results = await asyncio.gather(*(repo.add(new_job(key)) for _ in range(4)))
    assert len({job.job_id for job in results}) == 1


async def test_mark_running_counts_attempts_and_skips_finished(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    a, b = await repo.add(new_job()), await repo.add(new_job())
    await repo.record_outcomes([JobOutcome(b.job_id, AT, result=RESULT)])
    jobs = await repo.mark_running([a.job_id, b.job_id, "missing"])
    assert set(jobs) == {a.job_id, b.job_id}
    assert (jobs[a.job_id].status, jobs[a.job_id].attempts) == (JobStatus.RUNNING, 1)
    assert jobs[a.job_id].started_at is not None
    assert (jobs[b.job_id].status, jobs[b.job_id].attempts) == (JobStatus.SUCCEEDED, 0)
    again = await repo.mark_running([a.job_id])
    assert again[a.job_id].attempts == 2


async def test_record_outcomes_first_terminal_wins(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    ok, bad = await repo.add(new_job()), await repo.add(new_job())
    error = JobError(JobErrorCode.ENGINE_ERROR, "x" * 5000)
    outcomes = [
        JobOutcome(ok.job_id, AT, result=RESULT),
        JobOutcome(bad.job_id, AT, error=error),
        JobOutcome(ok.job_id, AT, error=error),  # later duplicate in the same batch
    ]
    assert await repo.record_outcomes(outcomes) == 2
    assert await repo.record_outcomes(outcomes) == 0
    assert await repo.record_outcomes([JobOutcome(bad.job_id, AT, result=RESULT)]) == 0
    stored = await repo.get_many([ok.job_id, bad.job_id])
    assert stored[ok.job_id].status is JobStatus.SUCCEEDED
    assert stored[ok.job_id].result == RESULT
    assert stored[ok.job_id].finished_at == AT
    failed = stored[bad.job_id]
    assert failed.status is JobStatus.FAILED and failed.result is None
    assert failed.error is not None and failed.error.code is JobErrorCode.ENGINE_ERROR
    assert len(failed.error.message) == 2000


async def test_record_many_outcomes_in_one_statement_per_chunk(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    jobs = [new_job() for _ in range(600)]
    async with engine.begin() as conn:
        await conn.execute(table.insert(), [job_to_row(j) for j in jobs])
    statements: list[str] = []

    def count(*args: object) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("UPDATE"):
            statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        changed = await repo.record_outcomes(
            [JobOutcome(j.job_id, AT, result=RESULT) for j in jobs]
        )
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert changed == 600
    assert len(statements) == 2  # 600 jobs in chunks of 500
    stored = await repo.get_many([j.job_id for j in jobs])
    assert {j.status for j in stored.values()} == {JobStatus.SUCCEEDED}


async def test_requeue_only_moves_running_jobs(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    running, queued = await repo.add(new_job()), await repo.add(new_job())
    await repo.mark_running([running.job_id])
    await repo.requeue([running.job_id, queued.job_id])
    stored = await repo.get_many([running.job_id, queued.job_id])
    assert stored[running.job_id].status is JobStatus.QUEUED
    assert stored[running.job_id].attempts == 1
    assert stored[queued.job_id].status is JobStatus.QUEUED


async def test_abandon_fails_only_a_job_the_queue_never_acknowledged(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    unpublished, published = await repo.add(new_job()), await repo.add(new_job())
    await repo.mark_published([published.job_id])
    error = JobError(JobErrorCode.QUEUE_UNAVAILABLE, "the queue is unavailable")
    assert await repo.abandon(JobOutcome(unpublished.job_id, AT, error=error)) is True
    assert await repo.abandon(JobOutcome(published.job_id, AT, error=error)) is False
    jobs = await repo.get_many([unpublished.job_id, published.job_id])
    assert jobs[unpublished.job_id].status is JobStatus.FAILED
    assert jobs[unpublished.job_id].error == error
    assert jobs[published.job_id].status is JobStatus.QUEUED  # a retry got it into the queue


async def test_progress_is_recorded_on_running_jobs_only(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    running = await repo.add(new_job())
    queued = await repo.add(new_job())
    await repo.mark_running([running.job_id])
    await repo.record_progress({running.job_id: (3, 10), queued.job_id: (1, 2)})
    got = await repo.get_many([running.job_id, queued.job_id])
    assert (got[running.job_id].pages_done, got[running.job_id].pages) == (3, 10)
    assert (got[queued.job_id].pages_done, got[queued.job_id].pages) == (None, None)


async def test_ping(engine: AsyncEngine) -> None:
    await SqlJobRepository(engine).ping()


@pytest.mark.parametrize("size", [0, 1, 4096, 9 * 1024 * 1024 + 7])
async def test_database_blobs_round_trip(engine: AsyncEngine, size: int) -> None:
    blobs = DatabaseBlobStore(engine)
    data = bytes(range(256)) * (size // 256) + b"\x00" * (size % 256)
    blob_id = await blobs.put(data)
    assert (await blobs.get_many([blob_id, "f" * 32])) == {blob_id: data}
    await blobs.delete_many([blob_id])
    assert await blobs.get_many([blob_id]) == {}


async def test_pooled_connections_see_other_writers_commits(database_url: str) -> None:
    """Check-in skips the rollback after a commit; a read must still never leave its snapshot
    behind for the connection's next user."""
    reader = create_database_engine(database_url, pool_size=1)
    writer = create_database_engine(database_url, pool_size=1)
    try:
        readers, writers = SqlJobRepository(reader), SqlJobRepository(writer)
        job = await writers.add(new_job())
        assert (await readers.get(job.job_id)).status is JobStatus.QUEUED  # type: ignore[union-attr]
        await readers.mark_running([job.job_id])  # a write on the reader's one connection
        await writers.record_outcomes([JobOutcome(job.job_id, AT, result=RESULT)])
        seen = await readers.get(job.job_id)
        assert seen is not None and seen.status is JobStatus.SUCCEEDED
    finally:
        await reader.dispose()
        await writer.dispose()
