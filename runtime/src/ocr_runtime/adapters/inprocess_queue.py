"""The all-in-one's job queue: an asyncio queue in the server process (no broker). It is the
`JobPublisher` of the API and the source of the in-process worker. Jobs in it are not durable;
the all-in-one re-enqueues unfinished jobs from the database at start."""

from __future__ import annotations

import asyncio

from ocr_runtime.application import JobMessage, QueueFull, QueueUnavailable


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
