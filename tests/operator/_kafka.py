"""Kafka helpers of the operator tests: produce to a topic, commit a group's offset."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def produce(bootstrap: str, topic: str, count: int) -> None:
    """`count` messages to partition 0 of `topic`."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"message-{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def commit_offset(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Commit `offset` on partition 0 for `group` (what a writer does after persisting)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: offset})
    finally:
        await consumer.stop()
