"""The outbox sweeper on the real database and broker: it publishes the queued jobs left
unmarked past its bound, once, and neither fresh jobs nor jobs already published."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from ocr_runtime.adapters.kafka import KafkaJobPublisher, KafkaProducerClient, ProducerOptions
from ocr_runtime.adapters.sql import SqlJobRepository, create_database_engine
from ocr_runtime.application.outbox import OutboxSweeper, SweepReport
from tests.dataplane.conftest import Stack
from tests.dataplane.support import read_topic
from tests.dataplane.test_outbox import store_orphan

pytestmark = pytest.mark.integration


async def _sweep_twice(stack: Stack) -> tuple[dict[str, str], SweepReport, SweepReport]:
    engine = create_database_engine(stack.db.async_url)
    repository = SqlJobRepository(engine)
    client = KafkaProducerClient(ProducerOptions(stack.bootstrap, "outbox-sweep-test"))
    await client.start()
    try:
        jobs = {
            "old": await store_orphan(stack.db.async_url, timedelta(minutes=10)),
            "fresh": await store_orphan(stack.db.async_url, timedelta(seconds=0)),
            "published": await store_orphan(stack.db.async_url, timedelta(minutes=10)),
        }
        await repository.mark_published([jobs["published"]])
        sweeper = OutboxSweeper(
            repository, KafkaJobPublisher(client, stack.topics.jobs), republish_after_s=60
        )
        first = await sweeper.sweep_once()
        second = await sweeper.sweep_once()  # the mark stops a second publish
        return jobs, first, second
    finally:
        await client.stop()
        await engine.dispose()


def test_the_sweeper_publishes_only_old_unmarked_jobs_once(stack: Stack) -> None:
    jobs, first, second = asyncio.run(_sweep_twice(stack))
    records = asyncio.run(read_topic(stack.bootstrap, stack.topics.jobs))
    assert [json.loads(value)["job_id"] for _, value, _ in records] == [jobs["old"]]
    assert (first.republished, second.republished) == (1, 0)
    assert first.oldest_unfinished_age_s >= 590
