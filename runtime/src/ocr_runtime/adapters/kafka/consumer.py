"""`RecordSource` on an aiokafka consumer group: bulk fetch (getmany), manual commits only
(auto-commit off), a rebalance listener that lets the loop finish and commit before
partitions go, and consumer lag per partition."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from ocr_runtime.adapters.failures import boundary
from ocr_runtime.adapters.kafka.security import PLAINTEXT, KafkaSecurity
from ocr_runtime.application.stream import Delivery, PartitionKey, RevokeHook

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    bootstrap: str
    topic: str
    group: str
    client_id: str
    poll_timeout_ms: int = 200
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    max_poll_interval_ms: int = 300_000
    max_partition_fetch_bytes: int = 1024 * 1024
    # The broker answers a fetch once it has this many bytes or this wait has passed.
    fetch_min_bytes: int = 1
    fetch_max_wait_ms: int = 100
    security: KafkaSecurity = PLAINTEXT


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaRecordSource, on_revoke: RevokeHook) -> None:
        self._source = source
        self._on_revoke = on_revoke

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        keys = frozenset(PartitionKey(tp.topic, tp.partition) for tp in revoked)
        if keys:
            await self._on_revoke(keys)
        self._source._forget(keys)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))
        await self._source._learn_committed(assigned)


@boundary
class KafkaRecordSource:
    def __init__(self, options: ConsumerOptions) -> None:
        self._options = options
        self._consumer: AIOKafkaConsumer | None = None
        self._committed: dict[PartitionKey, int] = {}

    @property
    def options(self) -> ConsumerOptions:
        return self._options

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("Kafka consumer not started")
        return self._consumer

    async def start(self, on_revoke: RevokeHook) -> None:
        o = self._options
        consumer = AIOKafkaConsumer(
            bootstrap_servers=o.bootstrap,
            group_id=o.group,
            client_id=o.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group must not skip jobs already queued
            session_timeout_ms=o.session_timeout_ms,
            heartbeat_interval_ms=o.heartbeat_interval_ms,
            max_poll_interval_ms=o.max_poll_interval_ms,
            max_partition_fetch_bytes=o.max_partition_fetch_bytes,
            fetch_min_bytes=o.fetch_min_bytes,
            fetch_max_wait_ms=o.fetch_max_wait_ms,
            **o.security.client_options(),
        )
        await o.security.started(o.bootstrap, consumer.start, consumer.stop)
        self._consumer = consumer
        consumer.subscribe([o.topic], listener=_Listener(self, on_revoke))

    async def fetch(self, max_records: int) -> Sequence[Delivery]:
        batches = await self.consumer.getmany(
            timeout_ms=self._options.poll_timeout_ms, max_records=max_records
        )
        return [
            Delivery(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                value=r.value,
                key=r.key,
                timestamp_ms=r.timestamp,
                headers=dict(r.headers or ()),
            )
            for records in batches.values()
            for r in records
        ]

    async def keep_alive(self) -> None:
        """A poll with every partition paused: it returns no record (nor moves a position)
        and tells the group coordinator that this member still polls."""
        consumer = self.consumer
        paused = consumer.assignment()
        consumer.pause(*paused)
        try:
            await consumer.getmany(timeout_ms=0)
        finally:
            # A rebalance meanwhile may have taken some away; new ones start unpaused.
            consumer.resume(*(paused & consumer.assignment()))

    async def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        assigned = self.assigned()
        offsets = {
            TopicPartition(k.topic, k.partition): nxt
            for k, nxt in next_offsets.items()
            if k in assigned
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved on: those partitions belong to another member, which resumes
            # from the last commit. Redelivered records are harmless (idempotent results).
            log.warning("commit skipped after a rebalance: %s", exc)
            return
        for tp, nxt in offsets.items():
            self._committed[PartitionKey(tp.topic, tp.partition)] = nxt

    def assigned(self) -> frozenset[PartitionKey]:
        if self._consumer is None:
            return frozenset()
        return frozenset(PartitionKey(tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def lag(self) -> dict[PartitionKey, int]:
        assigned = self.assigned()
        if not assigned:
            return {}
        ends = await self.consumer.end_offsets(
            [TopicPartition(k.topic, k.partition) for k in assigned]
        )
        return {
            PartitionKey(tp.topic, tp.partition): max(
                0, end - self._committed.get(PartitionKey(tp.topic, tp.partition), 0)
            )
            for tp, end in ends.items()
        }

    async def stop(self) -> None:
        if self._consumer is not None:
            # Leaves the group: the remaining members take the partitions over at once.
            await self._consumer.stop()
            self._consumer = None

    def _forget(self, keys: frozenset[PartitionKey]) -> None:
        for key in keys:
            self._committed.pop(key, None)

    async def _learn_committed(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            try:
                committed = await self.consumer.committed(tp)
            except Exception:
                log.debug("could not read the committed offset of %s", tp, exc_info=True)
                continue
            if committed is not None:
                self._committed[PartitionKey(tp.topic, tp.partition)] = committed
