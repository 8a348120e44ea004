"""Micro-batcher: turns a stream of fetched items into batches bounded by count, cost
(pixels) and the wait after the first item, in the spirit of Triton's dynamic batcher and
Ray Serve's `@serve.batch`.

A background task pulls items from `fetch` into a bounded buffer (the bound keeps the window
of fetched-but-uncommitted records small); `next_batch()` hands out batches in arrival order.
While the buffer is full the task calls `keep_alive` every `keep_alive_s` instead: a Kafka
consumer that stops polling for max.poll.interval.ms is dropped from its group, and slow
batches behind a full buffer would otherwise stop the polling for that long.
A batch is returned at once when it is full (count or cost budget reached); otherwise it waits
until `max_wait` after its first item *arrived*, so an item that already waited while the
previous batch ran does not wait again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

_FETCH_ERROR_BACKOFF_S = 1.0
_KEEP_ALIVE_S = 5.0


@dataclass(frozen=True, slots=True)
class Batch(Generic[T]):
    items: tuple[T, ...]
    cost: int
    waited_s: float  # from the first item's arrival to the batch's release


@dataclass(frozen=True, slots=True)
class _Arrival(Generic[T]):
    item: T
    at: float


class MicroBatcher(Generic[T]):
    def __init__(
        self,
        fetch: Callable[[int], Awaitable[Sequence[T]]],
        *,
        max_size: int,
        max_wait_s: float,
        max_cost: int,
        cost: Callable[[T], int],
        buffer_limit: int | None = None,
        keep_alive: Callable[[], Awaitable[None]] | None = None,
        keep_alive_s: float = _KEEP_ALIVE_S,
    ) -> None:
        if max_size < 1 or max_cost < 1 or max_wait_s < 0:
            raise ValueError("max_size and max_cost must be >= 1, max_wait_s >= 0")
        self._fetch = fetch
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._max_cost = max_cost
        self._cost = cost
        self._buffer_limit = buffer_limit or max(2 * max_size, 64)
        self._keep_alive = keep_alive
        self._keep_alive_s = keep_alive_s
        self._buffer: deque[_Arrival[T]] = deque()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._fetching = False
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("batcher already started")
        self._fetching = True
        self._task = asyncio.create_task(self._fetch_loop(), name="micro-batcher-fetch")

    async def stop_fetching(self) -> None:
        """Stop pulling new items (graceful shutdown); buffered items stay until `discard`."""
        self._fetching = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        async with self._changed:
            self._changed.notify_all()

    async def aclose(self) -> None:
        await self.stop_fetching()
        self._closed = True
        self._buffer.clear()
        async with self._changed:
            self._changed.notify_all()

    def resize(self, *, max_size: int, max_wait_s: float) -> None:
        """Count and wait limits for the batches formed from now on (online tuning); the
        buffer keeps the bound it was made with, so limits above the first ones do not fill."""
        if max_size < 1 or max_wait_s < 0:
            raise ValueError("max_size must be >= 1, max_wait_s >= 0")
        self._max_size = max_size
        self._max_wait_s = max_wait_s

    # --- consumer side ---------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def discard(self, drop: Callable[[T], bool]) -> int:
        """Drop buffered items (for example those of revoked partitions); the fetch task
        waiting for room is woken."""
        async with self._changed:
            kept = deque(a for a in self._buffer if not drop(a.item))
            dropped = len(self._buffer) - len(kept)
            self._buffer = kept
            self._changed.notify_all()
        return dropped

    async def next_batch(self) -> Batch[T] | None:
        """The next batch, or None once closed or no longer fetching with nothing buffered."""
        async with self._changed:
            while not self._buffer:
                if self._closed or not self._fetching:
                    return None
                await self._changed.wait()
            deadline = self._buffer[0].at + self._max_wait_s
            while not self._is_full() and self._fetching:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    break
            return self._take()

    def _is_full(self) -> bool:
        cost = 0
        for count, arrival in enumerate(self._buffer, start=1):
            cost += self._cost(arrival.item)
            if count >= self._max_size or cost >= self._max_cost:
                return True
        return False

    def _take(self) -> Batch[T] | None:
        if not self._buffer:
            return None
        first_at = self._buffer[0].at
        items: list[T] = []
        cost = 0
        while self._buffer and len(items) < self._max_size:
            item_cost = self._cost(self._buffer[0].item)
            # One item above the whole budget still forms a batch of its own.
            if items and cost + item_cost > self._max_cost:
                break
            items.append(self._buffer.popleft().item)
            cost += item_cost
        self._changed.notify_all()  # room in the buffer for the fetch task
        return Batch(tuple(items), cost, time.monotonic() - first_at)

    # --- producer side ---------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        while self._fetching:
            room = await self._room()
            try:
                items = await self._fetch(room)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fetch failed; retrying")
                await asyncio.sleep(_FETCH_ERROR_BACKOFF_S)
                continue
            if not items:
                continue
            now = time.monotonic()
            async with self._changed:
                self._buffer.extend(_Arrival(item, now) for item in items)
                self._changed.notify_all()

    async def _room(self) -> int:
        """Free places in the buffer once there are some; `keep_alive` runs meanwhile."""
        while True:
            async with self._changed:
                room = self._buffer_limit - len(self._buffer)
                if room > 0:
                    return room
                try:
                    await asyncio.wait_for(self._changed.wait(), self._keep_alive_s)
                    continue
                except TimeoutError:
                    pass
            await self._keep_source_alive()

    async def _keep_source_alive(self) -> None:
        if self._keep_alive is None:
            return
        try:
            await self._keep_alive()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("keep-alive poll failed; retrying", exc_info=True)
