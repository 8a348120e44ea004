"""Unit tests of the micro-batcher: no service needed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from ocr_runtime.worker.batcher import MicroBatcher


class Feed:
    """A fetch function fed by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[int]] = asyncio.Queue()

    async def fetch(self, room: int) -> Sequence[int]:
        try:
            return await asyncio.wait_for(self.queue.get(), 0.05)
        except TimeoutError:
            return []


def make(feed: Feed, *, size: int = 4, wait: float = 0.2, cost: int = 1000) -> MicroBatcher[int]:
    return MicroBatcher(feed.fetch, max_size=size, max_wait_s=wait, max_cost=cost, cost=lambda i: i)


async def test_full_batch_is_released_without_waiting() -> None:
    feed = Feed()
    batcher = make(feed, size=4, wait=30.0)
    await batcher.start()
    feed.queue.put_nowait([1, 2, 3, 4, 5])
    batch = await asyncio.wait_for(batcher.next_batch(), 5.0)  # would hang 30 s if it waited
    assert batch is not None
    assert batch.items == (1, 2, 3, 4)
    await batcher.aclose()


async def test_partial_batch_waits_for_more_then_releases_after_max_wait() -> None:
    feed = Feed()
    batcher = make(feed, size=10, wait=0.3)
    await batcher.start()
    feed.queue.put_nowait([1])
    task = asyncio.create_task(batcher.next_batch())
    await asyncio.sleep(0.1)
    feed.queue.put_nowait([2, 3])
    batch = await asyncio.wait_for(task, 5.0)
    assert batch is not None
    assert batch.items == (1, 2, 3)  # the late items joined the batch of the first
    assert batch.waited_s >= 0.25
    await batcher.aclose()


async def test_item_that_already_waited_is_not_delayed_again() -> None:
    feed = Feed()
    batcher = make(feed, size=10, wait=0.3)
    await batcher.start()
    feed.queue.put_nowait([1])
    await asyncio.sleep(0.5)  # longer than max wait: the item waited while "a batch ran"
    started = time.monotonic()
    batch = await batcher.next_batch()
    assert batch is not None
    assert batch.items == (1,)
    assert time.monotonic() - started < 0.25
    await batcher.aclose()


async def test_cost_budget_bounds_a_batch_and_an_oversized_item_goes_alone() -> None:
    feed = Feed()
    batcher = make(feed, size=10, wait=0.0, cost=100)
    await batcher.start()
    feed.queue.put_nowait([60, 30, 20, 500, 5])
    await asyncio.sleep(0.1)
    sizes = []
    for _ in range(3):
        batch = await batcher.next_batch()
        assert batch is not None
        sizes.append(batch.items)
    assert sizes == [(60, 30), (20,), (500,)]
    last = await batcher.next_batch()
    assert last is not None
    assert last.items == (5,)
    await batcher.aclose()


async def test_discard_and_stop_fetching() -> None:
    feed = Feed()
    batcher = make(feed, size=10, wait=0.0)
    await batcher.start()
    feed.queue.put_nowait([1, 2, 3, 4])
    await asyncio.sleep(0.1)
    assert await batcher.discard(lambda i: i % 2 == 0) == 2
    await batcher.stop_fetching()
    feed.queue.put_nowait([9])  # no longer fetched
    batch = await batcher.next_batch()
    assert batch is not None
    assert batch.items == (1, 3)
    assert await batcher.next_batch() is None
    await batcher.aclose()


async def test_buffer_is_bounded() -> None:
    pulled: list[int] = []

    async def endless(room: int) -> Sequence[int]:
        pulled.append(room)
        await asyncio.sleep(0)
        return list(range(room))

    batcher = MicroBatcher(endless, max_size=4, max_wait_s=0, max_cost=100, cost=lambda _: 1,
                           buffer_limit=16)  # fmt: skip
    await batcher.start()
    await asyncio.sleep(0.1)
    assert batcher.buffered == 16
    assert sum(pulled) == 16
    await batcher.aclose()


class CountingFeed(Feed):
    """A Feed that counts its fetches and keep-alive polls."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches = 0
        self.keep_alives = 0

    async def fetch(self, room: int) -> Sequence[int]:
        self.fetches += 1
        return await super().fetch(room)

    async def keep_alive(self) -> None:
        self.keep_alives += 1


async def _full_batcher(*, keep_alive_s: float) -> tuple[CountingFeed, MicroBatcher[int]]:
    """A started batcher whose buffer (two places) holds two items no one has taken."""
    feed = CountingFeed()
    batcher = MicroBatcher(feed.fetch, max_size=1, max_wait_s=0.0, max_cost=1000,
                           cost=lambda i: i, buffer_limit=2, keep_alive=feed.keep_alive,
                           keep_alive_s=keep_alive_s)  # fmt: skip
    await batcher.start()
    feed.queue.put_nowait([1, 2])
    for _ in range(100):
        if batcher.buffered == 2:
            break
        await asyncio.sleep(0.01)
    assert batcher.buffered == 2
    return feed, batcher


async def test_a_full_buffer_keeps_the_source_alive_and_fetches_nothing() -> None:
    feed, batcher = await _full_batcher(keep_alive_s=0.05)
    fetches = feed.fetches
    await asyncio.sleep(0.5)  # nobody takes a batch
    # No fetch while full (Kafka would hand out records there is no room for), yet the
    # source was polled about every 50 ms, as a consumer group needs.
    assert feed.fetches == fetches
    assert feed.keep_alives >= 5, feed.keep_alives
    batch = await asyncio.wait_for(batcher.next_batch(), 5.0)
    assert batch is not None
    assert batch.items == (1,)
    await batcher.aclose()


async def test_discarding_from_a_full_buffer_wakes_the_fetch_at_once() -> None:
    feed, batcher = await _full_batcher(keep_alive_s=3600.0)
    # The revoke of a partition drops its buffered records; the fetch task must not sleep
    # until some batch is taken (none will be: next_batch waits for the fetch task).
    assert await batcher.discard(lambda _: True) == 2
    feed.queue.put_nowait([3])
    batch = await asyncio.wait_for(batcher.next_batch(), 5.0)
    assert batch is not None
    assert batch.items == (3,)
    await batcher.aclose()
