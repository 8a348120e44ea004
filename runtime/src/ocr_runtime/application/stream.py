"""Ports of the consume loops (worker and writer): what they need from a log-based queue
(Kafka in production, a fake in unit tests): records with their position, explicit commits,
a revocation callback, lag, and a dead-letter destination."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol


class PartitionKey(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One record as fetched: the raw bytes plus where it sits in the log."""

    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    timestamp_ms: int | None = None
    headers: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def where(self) -> PartitionKey:
        return PartitionKey(self.topic, self.partition)


# Called with the partitions about to be taken away, before the rebalance proceeds.
RevokeHook = Callable[[frozenset[PartitionKey]], Awaitable[None]]


class RecordSource(Protocol):
    async def start(self, on_revoke: RevokeHook) -> None: ...

    async def fetch(self, max_records: int) -> Sequence[Delivery]:
        """Records ready now, or waits briefly (a poll interval) and returns what came."""

    async def keep_alive(self) -> None:
        """Poll without taking records: a consumer that buffered enough stays a live member
        of its group (Kafka drops one that has not polled for max.poll.interval.ms)."""

    async def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        """Commit the offset of the next record to read, per partition. Partitions no longer
        assigned are skipped (another member owns them now)."""

    def assigned(self) -> frozenset[PartitionKey]: ...

    async def lag(self) -> dict[PartitionKey, int]:
        """Log end offset minus committed offset per assigned partition."""

    async def stop(self) -> None:
        """Leave the group (triggers the revoke hook) and close."""


class DeadLetterReason(StrEnum):
    POISON = "poison"  # unparseable message: no job can be derived from it
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # retried max_attempts times and still failing
    UNWRITABLE = "unwritable"  # a result the database refuses
    UNREADABLE = "unreadable"  # an image the blob store cannot read, for good


@dataclass(frozen=True, slots=True)
class DeadLetter:
    delivery: Delivery
    reason: DeadLetterReason
    detail: str
    stage: str  # "worker" or "writer"
    extra: Mapping[str, str] = field(default_factory=dict)


class DeadLetterSink(Protocol):
    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Return once the letters are durable (acks=all)."""
