"""Topic management against the real broker: create, grow, never shrink; consumer lag."""

from __future__ import annotations

import uuid

import pytest

from ocr_operator.kafka_topics import (
    KafkaUnavailableError,
    TopicRequest,
    consumer_lag,
    ensure_topics,
    partition_counts,
)
from tests.operator._kafka import commit_offset, produce

pytestmark = pytest.mark.integration


async def test_create_grow_and_refuse_shrink(kafka_bootstrap: str) -> None:
    name = f"op-test-{uuid.uuid4().hex[:8]}"
    report = await ensure_topics(kafka_bootstrap, [TopicRequest(name, 2, 1, {})])
    assert report.created == (name,)
    assert (await partition_counts(kafka_bootstrap, [name]))[name] == 2

    report = await ensure_topics(kafka_bootstrap, [TopicRequest(name, 3, 1, {})])
    assert report.grown == (name,)
    assert (await partition_counts(kafka_bootstrap, [name]))[name] == 3

    report = await ensure_topics(kafka_bootstrap, [TopicRequest(name, 1, 1, {})])
    assert [(r.topic, r.current, r.requested) for r in report.not_supported] == [(name, 3, 1)]
    assert (await partition_counts(kafka_bootstrap, [name]))[name] == 3
    again = await ensure_topics(kafka_bootstrap, [TopicRequest(name, 3, 1, {})])
    assert (again.created, again.grown, again.not_supported) == ((), (), ())


async def test_consumer_lag_counts_uncommitted_messages(kafka_bootstrap: str) -> None:
    topic, group = f"op-lag-{uuid.uuid4().hex[:8]}", f"op-group-{uuid.uuid4().hex[:8]}"
    assert await consumer_lag(kafka_bootstrap, group, topic) == 0  # no topic yet
    await ensure_topics(kafka_bootstrap, [TopicRequest(topic, 1, 1, {})])
    await produce(kafka_bootstrap, topic, 3)
    assert await consumer_lag(kafka_bootstrap, group, topic) == 3
    await commit_offset(kafka_bootstrap, group, topic, 2)
    assert await consumer_lag(kafka_bootstrap, group, topic) == 1


async def test_unreachable_broker_is_reported() -> None:
    with pytest.raises(KafkaUnavailableError):
        await ensure_topics("127.0.0.1:1", [TopicRequest("x", 1, 1, {})])
