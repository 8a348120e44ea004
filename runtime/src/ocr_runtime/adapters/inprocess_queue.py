"""The all-in-one's job queue: an asyncio queue in the server process (no broker). It is the
`JobPublisher` of the API and, through `InProcessRecordSource`, the record source of the same
consume loop the Kafka workers run. Jobs in it are not durable;
the all-in-one re-enqueues unfinished jobs from the database at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from ocr_runtime.application import JobMessage, QueueFull, QueueUnavailable
from ocr_runtime.application.messages import REQUEST_ID_HEADER
from ocr_runtime.application.stream import DeadLetter, Delivery, PartitionKey, RevokeHook

log = logging.getLogger(__name__)


class InProcessJobQueue:
    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        # Unbounded underneath: the bound applies to new submissions only, so a retry or a
        # recovered job is never dropped.
        self._queue: asyncio.Queue[JobMessage] = asyncio.Queue()
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def publish(self, message: JobMessage) -> None:
        if self._closed:
            raise QueueUnavailable("the server is shutting down")
        if self._queue.qsize() >= self._max_size:
            raise QueueFull(f"{self._max_size} jobs are already waiting; retry later")
        self._queue.put_nowait(message)

    def redeliver(self, message: JobMessage) -> None:
        """Put a job back at once (recovery at start), past the bound."""
        self._queue.put_nowait(message)

    def redeliver_later(self, message: JobMessage, delay_s: float) -> None:
        """Put a job back after `delay_s` (a retry's backoff)."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            if not self._closed:
                self._queue.put_nowait(message)

        handle = loop.call_later(delay_s, fire)
        self._timers.add(handle)

    async def take(self, max_items: int) -> list[JobMessage]:
        """Wait for one job, then return it with whatever else is already waiting."""
        items = [await self._queue.get()]
        while len(items) < max_items and not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def ping(self) -> None:
        if self._closed:
            raise QueueUnavailable("the in-process queue is closed")

    def close(self) -> None:
        self._closed = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()


_TOPIC = "inprocess"
_PARTITION = PartitionKey(_TOPIC, 0)
_POLL_S = 0.2


class InProcessRecordSource:
    """The queue as a `RecordSource`, so the all-in-one runs the production consume loop,
    inference handler and failure policy. Commits are no-ops: the queue is not durable, and
    after a restart the unfinished jobs come back from the database."""

    def __init__(self, queue: InProcessJobQueue) -> None:
        self._queue = queue
        self._offset = 0

    async def start(self, on_revoke: RevokeHook) -> None:
        return None  # one consumer, nothing is ever revoked

    async def fetch(self, max_records: int) -> Sequence[Delivery]:
        try:
            messages = await asyncio.wait_for(self._queue.take(max_records), _POLL_S)
        except TimeoutError:
            return []
        deliveries = []
        for message in messages:
            headers = (
                {}
                if message.request_id is None
                else {REQUEST_ID_HEADER: message.request_id.encode()}
            )
            deliveries.append(
                Delivery(_TOPIC, 0, self._offset, message.to_bytes(), headers=headers)
            )
            self._offset += 1
        return deliveries

    async def keep_alive(self) -> None:
        return None  # no group to stay in

    async def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        return None

    def assigned(self) -> frozenset[PartitionKey]:
        return frozenset({_PARTITION})

    async def lag(self) -> dict[PartitionKey, int]:
        return {_PARTITION: self._queue.depth}

    async def stop(self) -> None:
        return None


class LoggedDeadLetters:
    """`DeadLetterSink` of the all-in-one (no broker): each letter is an error log line with
    its reason, detail and job."""

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            log.error("dead letter (%s, %s): %s", letter.reason.value, letter.stage,
                      letter.detail, extra={"job_id": letter.extra.get("job_id")})  # fmt: skip
