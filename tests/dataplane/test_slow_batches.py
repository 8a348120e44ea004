"""The consume loop over the real broker when a batch is slower than Kafka's poll deadline:
with its buffer full the loop takes no record for longer than max.poll.interval.ms, yet the
consumer stays in its group (it keeps polling with its partitions paused) and every record
is handled once, in order, with no rebalance on the way.

Without the keep-alive the broker dropped such a worker from its group ("LeaveGroup") and
the loop then waited forever on an empty buffer while its probes still said Ready."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from ocr_runtime.adapters.kafka import ConsumerOptions, KafkaRecordSource, ensure_topics
from ocr_runtime.worker import DataPlaneMetrics
from ocr_runtime.worker.consume import BatchLimits, ConsumeLoop, Decoded

pytestmark = pytest.mark.integration

RECORDS = 72  # more than the loop buffers (64): the buffer is full while the first one runs
FIRST_S = 12.0  # the first record's batch: longer than the poll deadline
HANDLE_S = 0.02  # each of the others
MAX_POLL_INTERVAL_MS = 8_000  # above the batcher's 5 s keep-alive, below FIRST_S


async def _produce(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send(topic, str(n).encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()


def _decode(value: bytes, _headers: Mapping[str, bytes]) -> int:
    return int(value)


async def _consume_slowly(bootstrap: str, topic: str) -> list[int]:
    group = f"slow-{uuid.uuid4().hex[:8]}"
    source = KafkaRecordSource(
        ConsumerOptions(
            bootstrap=bootstrap,
            topic=topic,
            group=group,
            client_id=group,
            session_timeout_ms=6_000,
            heartbeat_interval_ms=1_000,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        )
    )
    handled: list[int] = []

    async def handle(items: Sequence[Decoded[int]]) -> None:
        await asyncio.sleep(FIRST_S if not handled else HANDLE_S * len(items))
        handled.extend(item.message for item in items if item.message is not None)

    loop = ConsumeLoop(
        source,
        decode=_decode,
        cost=lambda _: 1,
        handle=handle,
        limits=BatchLimits(max_size=1, max_wait_s=0.0, max_cost=1),
        metrics=DataPlaneMetrics(CollectorRegistry()),
        group=group,
        revoke_wait_s=5.0,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        for _ in range(int((FIRST_S + RECORDS * HANDLE_S) * 4 / 0.5) + 60):
            if len(handled) >= RECORDS or task.done():
                break
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30.0)
    return handled


def test_batches_slower_than_the_poll_deadline_keep_the_consumer_in_its_group(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"slow-batches-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(kafka_bootstrap, [topic], partitions=1))
    asyncio.run(_produce(kafka_bootstrap, topic))
    caplog.set_level(logging.INFO, logger="ocr_runtime.worker.consume")
    caplog.set_level(logging.INFO, logger="aiokafka.consumer.group_coordinator")
    handled = asyncio.run(_consume_slowly(kafka_bootstrap, topic))
    assert handled == list(range(RECORDS)), f"{len(handled)} handled: {handled[-5:]}"
    messages = [record.getMessage() for record in caplog.records]
    # Joined once and never dropped: a member the broker drops revokes and joins again.
    joins = [m for m in messages if m.startswith("(Re-)joining group")]
    assert len(joins) == 1, joins
    revokes = [m for m in messages if m.startswith("revoked")]
    assert len(revokes) <= 1, revokes  # at most the one of the stop, as the loop leaves
