"""The outbox: a job stored but never published (the API died between the two, or the publish
failed and recording that failure failed too) is published again, by the API's sweeper after a
bound or at once when its Idempotency-Key is replayed, and the age of the oldest unfinished
job is exported so that such a job cannot hide."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from ocr_runtime.adapters.kafka import KafkaJobPublisher, KafkaProducerClient, ProducerOptions
from ocr_runtime.adapters.sql import (
    DatabaseBlobStore,
    GroupCommitIntake,
    SqlJobRepository,
    create_database_engine,
)
from ocr_runtime.application import (
    ImageLimits,
    JobMessage,
    JobOutcome,
    QueueUnavailable,
    SubmitJob,
    Upload,
)
from ocr_runtime.domain import Job, JobStatus
from tests.dataplane.conftest import Stack
from tests.dataplane.support import metric_value, png, read_topic, wait_until

pytestmark = pytest.mark.integration

LIMITS = ImageLimits(max_bytes=5_000_000, max_pixels=5_000_000)


async def store_orphan(url: str, age: timedelta) -> str:
    """What an API killed between storing and publishing leaves behind: the image and a
    queued job row, created `age` ago, with no message on the jobs topic."""
    engine = create_database_engine(url)
    intake = GroupCommitIntake(engine)
    created = datetime.now(UTC) - age
    try:
        job = await intake.store(
            png(4242),
            lambda blob_id: replace(Job.submit(blob_id, width=48, height=24), created_at=created),
        )
    finally:
        await intake.aclose()
        await engine.dispose()
    return job.job_id


def test_a_job_orphaned_by_a_dead_api_is_republished_and_finishes(stack: Stack) -> None:
    job_id = asyncio.run(store_orphan(stack.db.async_url, timedelta(minutes=5)))
    api = stack.start("api", "batched")

    def republished() -> bool:
        return metric_value(api.metrics(), "ocr_jobs_republished_total") == 1

    wait_until(republished, 30, "the sweeper to republish the orphan")
    age = metric_value(api.metrics(), "ocr_oldest_unfinished_job_age_seconds")
    assert age >= 240, "the orphan's age is not exported"
    stack.start("worker", "batched")
    stack.db.wait_all_done([job_id])
    assert stack.db.rows()[job_id].status == "succeeded"
    wait_until(
        lambda: metric_value(api.metrics(), "ocr_oldest_unfinished_job_age_seconds") == 0,
        60, "the oldest-unfinished age to fall back to 0",
    )  # fmt: skip


class _BrokenPublisher:
    async def publish(self, message: JobMessage) -> None:
        raise ConnectionError("broker unreachable")

    async def ping(self) -> None:
        raise ConnectionError("broker unreachable")


class _CannotRecordFailures(SqlJobRepository):
    """The database drops the connection just when the API records the refused publish."""

    async def abandon(self, outcome: JobOutcome) -> bool:
        raise OperationalError("UPDATE jobs", {}, Exception(2013, "Lost connection"))


async def _submit_with_failed_publish_then_replay(stack: Stack) -> tuple[str, Job, Job]:
    engine = create_database_engine(stack.db.async_url)
    blobs = DatabaseBlobStore(engine)
    client = KafkaProducerClient(ProducerOptions(stack.bootstrap, "outbox-test"))
    await client.start()
    try:
        broken = SubmitJob(_CannotRecordFailures(engine), blobs, _BrokenPublisher(), LIMITS)
        with pytest.raises(QueueUnavailable):
            await broken(Upload(png(7), "image/png", "replay-me"))
        repository = SqlJobRepository(engine)
        orphan = await repository.find_by_idempotency_key("replay-me")
        assert orphan is not None and orphan.unpublished
        working = SubmitJob(repository, blobs, KafkaJobPublisher(client, stack.topics.jobs), LIMITS)
        replayed = await working(Upload(png(7), "image/png", "replay-me"))
        after = await repository.get(orphan.job_id)
        assert after is not None
        return orphan.job_id, replayed, after
    finally:
        await client.stop()
        await engine.dispose()


def test_replaying_the_key_of_an_unpublished_job_publishes_it(stack: Stack) -> None:
    job_id, replayed, after = asyncio.run(_submit_with_failed_publish_then_replay(stack))
    assert replayed.job_id == job_id
    records = asyncio.run(read_topic(stack.bootstrap, stack.topics.jobs))
    assert [json.loads(value)["job_id"] for _, value, _ in records] == [job_id]
    assert after.status is JobStatus.QUEUED and after.published_at is not None
