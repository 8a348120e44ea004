"""Kafka topics through the admin API (management Operator) and consumer lag.

Topics are created with the spec's partitions, replication factor and config; partitions
only ever grow. A smaller partition count is never applied: it comes back in
`TopicReport.not_supported` and the reconciler reports reason NotSupported (as Strimzi does).
Topics are never deleted by the operator (they may hold unprocessed work).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from ocr_operator.kafka_security import refusal
from ocr_operator.ports import ShrinkRefused, TopicReport, TopicRequest

REQUEST_TIMEOUT_MS = 10_000


class KafkaUnavailableError(Exception):
    """The broker could not be reached or refused an admin request."""


async def ensure_topics(
    bootstrap: str, topics: Sequence[TopicRequest], client: Mapping[str, Any] | None = None
) -> TopicReport:
    """Create missing topics and grow partitions; never shrink, never delete. `client`:
    security options (OperatorSettings.kafka_client_options)."""
    admin = _admin(bootstrap, client)
    try:
        await admin.start()
        return await _ensure(admin, topics)
    except KafkaError as error:
        raise await _unavailable(error, bootstrap, client) from error
    finally:
        await admin.close()


async def _unavailable(
    error: KafkaError, bootstrap: str, client: Mapping[str, Any] | None
) -> KafkaUnavailableError:
    reason = (
        await refusal(bootstrap, client or {}) if isinstance(error, KafkaConnectionError) else None
    )
    return KafkaUnavailableError(reason or f"{type(error).__name__}: {error}")


def _admin(bootstrap: str, client: Mapping[str, Any] | None) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS, **(client or {})
    )


async def _ensure(admin: AIOKafkaAdminClient, topics: Sequence[TopicRequest]) -> TopicReport:
    current = await _partition_counts(admin, [t.name for t in topics])
    missing = [t for t in topics if t.name not in current]
    if missing:
        # Created concurrently: the next pass sees it.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.config)
                    for t in missing
                ]
            )
    grow = {
        t.name: NewPartitions(total_count=t.partitions)
        for t in topics
        if t.name in current and t.partitions > current[t.name]
    }
    if grow:
        await admin.create_partitions(grow)
    return TopicReport(
        created=tuple(t.name for t in missing),
        grown=tuple(sorted(grow)),
        not_supported=tuple(
            ShrinkRefused(t.name, current[t.name], t.partitions)
            for t in topics
            if t.name in current and t.partitions < current[t.name]
        ),
    )


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    existing = set(await admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    return {d["topic"]: len(d["partitions"]) for d in described if d.get("error_code", 0) == 0}


async def partition_counts(
    bootstrap: str, names: list[str], client: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """Partitions of each existing topic among `names` (missing ones are left out)."""
    admin = _admin(bootstrap, client)
    try:
        await admin.start()
        return await _partition_counts(admin, names)
    except KafkaError as error:
        raise await _unavailable(error, bootstrap, client) from error
    finally:
        await admin.close()


async def consumer_lag(
    bootstrap: str, group: str, topic: str, client: Mapping[str, Any] | None = None
) -> int:
    """Messages of `topic` not yet committed by `group` (0 for a missing or empty topic)."""
    admin = _admin(bootstrap, client)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **(client or {}),
    )
    try:
        await admin.start()
        counts = await _partition_counts(admin, [topic])
        if topic not in counts:
            return 0
        partitions = [TopicPartition(topic, p) for p in range(counts[topic])]
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        await consumer.start()
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
    except KafkaError as error:
        raise await _unavailable(error, bootstrap, client) from error
    finally:
        await consumer.stop()
        await admin.close()
    lag = 0
    for tp in partitions:
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag += max(ends[tp] - max(done, starts[tp]), 0)
    return lag


class KafkaTopicAdmin:
    """The TopicAdmin port over the Kafka admin API, with the operator's own Kafka security
    options (`OperatorSettings.kafka_client_options()`; none: PLAINTEXT)."""

    def __init__(self, client: Mapping[str, Any] | None = None) -> None:
        self._client = dict(client or {})

    async def ensure(self, bootstrap: str, topics: Sequence[TopicRequest]) -> TopicReport:
        return await ensure_topics(bootstrap, topics, self._client)

    async def lag(self, bootstrap: str, group: str, topic: str) -> int:
        return await consumer_lag(bootstrap, group, topic, self._client)


__all__ = [
    "KafkaTopicAdmin",
    "KafkaUnavailableError",
    "ShrinkRefused",
    "TopicReport",
    "TopicRequest",
    "consumer_lag",
    "ensure_topics",
    "partition_counts",
]
