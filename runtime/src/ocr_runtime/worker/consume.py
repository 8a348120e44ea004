"""The consume loop shared by the inference worker and the writer.

Fetch in bulk -> decode -> micro-batch -> handle (the handler returns once the batch's
effect is durable) -> commit the next offsets, in the background while the next batch runs,
at most once per commit interval. Offsets are committed only after that, and on partition
revoke (the revoke hook first waits for the in-flight batch and commits at once). On stop
(SIGTERM) the loop stops fetching, finishes the batch in flight, commits and leaves the
group; records that were fetched but not started are dropped and will be redelivered to
whoever owns them next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ocr_runtime.application.stream import Delivery, PartitionKey, RecordSource
from ocr_runtime.worker.batcher import Batch, MicroBatcher
from ocr_runtime.worker.metrics import DataPlaneMetrics
from ocr_runtime.worker.tuning import BatchSample, BatchTuner, TunedLimits

log = logging.getLogger(__name__)

M = TypeVar("M")

_LAG_REFRESH_S = 5.0


@dataclass(frozen=True, slots=True)
class Decoded(Generic[M]):
    """A delivery and what it decoded to; `message` is None for a poison record."""

    delivery: Delivery
    message: M | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_size: int
    max_wait_s: float
    max_cost: int
    # Above 0: size and wait are tuned online within this p95 (max_size and max_wait_s
    # become their ceilings).
    latency_target_s: float = 0.0


class OffsetLedger:
    """Next offsets of records whose effect is durable but not yet committed."""

    def __init__(self) -> None:
        self._pending: dict[PartitionKey, int] = {}

    def done(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            nxt = d.offset + 1
            if nxt > self._pending.get(d.where, -1):
                self._pending[d.where] = nxt

    def pending(self) -> bool:
        return bool(self._pending)

    def take(self, only: frozenset[PartitionKey] | None = None) -> dict[PartitionKey, int]:
        keys = [k for k in self._pending if only is None or k in only]
        return {k: self._pending.pop(k) for k in keys}

    def restore(self, offsets: Mapping[PartitionKey, int]) -> None:
        for key, nxt in offsets.items():
            if nxt > self._pending.get(key, -1):
                self._pending[key] = nxt

    def forget(self, partitions: frozenset[PartitionKey]) -> None:
        for key in partitions:
            self._pending.pop(key, None)


Handler = Callable[[Sequence[Decoded[M]]], Awaitable[None]]


class ConsumeLoop(Generic[M]):
    def __init__(
        self,
        source: RecordSource,
        *,
        decode: Callable[[bytes, Mapping[str, bytes]], M],
        cost: Callable[[M], int],
        handle: Handler[M],
        limits: BatchLimits,
        metrics: DataPlaneMetrics,
        group: str,
        revoke_wait_s: float,
        commit_interval_s: float = 0.0,
    ) -> None:
        """`commit_interval_s`: the shortest time between two offset commits; the batches
        finished meanwhile share the next one. 0: a commit after every batch."""
        if commit_interval_s < 0:
            raise ValueError("commit_interval_s must be >= 0")
        self._source = source
        self._decode = decode
        self._cost = cost
        self._handle = handle
        self._metrics = metrics
        self._group = group
        self._revoke_wait_s = revoke_wait_s
        self._ledger = OffsetLedger()
        self._busy = asyncio.Lock()  # held while a batch is handled
        # Commits run beside the next batch: a commit is a broker round trip that standard
        # mode (one job per batch) used to wait for after every job.
        self._committer: asyncio.Task[None] | None = None
        # Each commit is a write to the broker's group coordinator, and at one per batch
        # (dozens a second) those writes were a large share of the broker's CPU. A crash
        # redelivers at most an interval's records, which workers skip (finished already).
        self._commit_interval_s = commit_interval_s
        self._committed_at = -math.inf
        self._commit_now = asyncio.Event()  # revoke and stop: no waiting for the interval
        self._lag_labels: set[PartitionKey] = set()
        self._batcher: MicroBatcher[Decoded[M]] = MicroBatcher(
            self._fetch,
            max_size=limits.max_size,
            max_wait_s=limits.max_wait_s,
            max_cost=limits.max_cost,
            cost=lambda item: self._cost(item.message) if item.message is not None else 0,
            keep_alive=source.keep_alive,
        )
        self._tuner: BatchTuner | None = None
        if limits.latency_target_s > 0:
            ceiling = TunedLimits(max_size=limits.max_size, max_wait_s=limits.max_wait_s)
            self._tuner = BatchTuner(target_s=limits.latency_target_s, ceiling=ceiling)
            self._apply_limits(self._tuner.limits)
        self.ready = False

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then drain. Returns after leaving the group."""
        await self._source.start(self._on_revoke)
        await self._batcher.start()
        lag_task = asyncio.create_task(self._refresh_lag(), name="consumer-lag")
        self.ready = True
        try:
            await self._consume(stop)
        finally:
            self.ready = False
            lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_task
            await self._batcher.stop_fetching()
            await self._batcher.discard(lambda _: True)
            await self._commits_done()
            await self._commit(None)
            await self._source.stop()
            await self._batcher.aclose()

    async def _consume(self, stop: asyncio.Event) -> None:
        stopped = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            while not stop.is_set():
                waiting = asyncio.create_task(self._batcher.next_batch())
                await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():
                    waiting.cancel()  # items stay buffered; nothing is lost
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiting
                    break
                batch = waiting.result()
                if batch is None:
                    break
                async with self._busy:
                    await self._handle_batch(batch)
        finally:
            stopped.cancel()

    async def _handle_batch(self, batch: Batch[Decoded[M]]) -> None:
        assigned = self._source.assigned()
        # Records of a partition revoked meanwhile belong to its new owner now.
        items = [i for i in batch.items if i.delivery.where in assigned]
        if not items:
            return
        self._metrics.batch_wait.observe(batch.waited_s)
        started = time.monotonic()
        await self._handle(items)
        self._ledger.done([i.delivery for i in items])
        if self._tuner is not None:
            self._tune(self._tuner, batch, handled_s=time.monotonic() - started)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_all(), name="offset-commit")

    def _tune(self, tuner: BatchTuner, batch: Batch[Decoded[M]], *, handled_s: float) -> None:
        sample = BatchSample(
            size=len(batch.items),
            limit=tuner.limits.max_size,
            waited_s=batch.waited_s,
            engine_s=handled_s,
        )
        step = tuner.observe(sample)
        if step is not None:
            self._metrics.batch_tuning_steps.labels(step=step.value).inc()
            self._apply_limits(tuner.limits)

    def _apply_limits(self, limits: TunedLimits) -> None:
        self._batcher.resize(max_size=limits.max_size, max_wait_s=limits.max_wait_s)
        self._metrics.batch_size_limit.set(limits.max_size)
        self._metrics.batch_wait_limit.set(limits.max_wait_s)

    async def _commit_all(self) -> None:
        """Commit what is durable, then what became durable meanwhile, each commit once the
        interval since the last has passed; stop at a failure (the offsets stay in the
        ledger for the next batch's commit)."""
        while self._ledger.pending():
            wait_s = self._committed_at + self._commit_interval_s - time.monotonic()
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._commit_now.wait(), wait_s)
            if not await self._commit(None):
                return

    async def _commits_done(self) -> None:
        """The commit in the background, finished now instead of at its interval."""
        if self._committer is not None:
            self._commit_now.set()
            await asyncio.gather(self._committer, return_exceptions=True)
            self._commit_now.clear()

    async def _commit(self, only: frozenset[PartitionKey] | None) -> bool:
        """Whether the commit succeeded (or there was nothing to commit)."""
        offsets = self._ledger.take(only)
        if not offsets:
            return True
        self._committed_at = time.monotonic()
        try:
            await self._source.commit(offsets)
        except Exception:
            # Not fatal: the records are redelivered at worst, and results are idempotent.
            self._metrics.commit_failures.inc()
            assigned = self._source.assigned()  # a partition revoked meanwhile is not ours
            self._ledger.restore({k: v for k, v in offsets.items() if k in assigned})
            log.warning("offset commit failed; will retry with the next batch", exc_info=True)
            return False
        return True

    async def _on_revoke(self, partitions: frozenset[PartitionKey]) -> None:
        try:
            await asyncio.wait_for(self._busy.acquire(), self._revoke_wait_s)
        except TimeoutError:
            log.warning("revoke: batch still running after %.1fs; not waiting", self._revoke_wait_s)
            await self._batcher.discard(lambda item: item.delivery.where in partitions)
            self._ledger.forget(partitions)
            return
        try:
            dropped = await self._batcher.discard(lambda item: item.delivery.where in partitions)
            await self._commits_done()
            await self._commit(partitions)
            self._ledger.forget(partitions)
            log.info("revoked %s; dropped %d buffered records", sorted(partitions), dropped)
        finally:
            self._busy.release()

    async def _fetch(self, room: int) -> list[Decoded[M]]:
        deliveries = await self._source.fetch(room)
        return [self._decode_one(d) for d in deliveries]

    def _decode_one(self, delivery: Delivery) -> Decoded[M]:
        try:
            return Decoded(delivery, self._decode(delivery.value, delivery.headers))
        except Exception as exc:  # anything unparseable is poison, whatever the reason
            return Decoded(delivery, None, f"{type(exc).__name__}: {exc}"[:500])

    async def _refresh_lag(self) -> None:
        while True:
            try:
                lag = await self._source.lag()
            except Exception:
                log.debug("lag refresh failed", exc_info=True)
                lag = {}
            gauge = self._metrics.consumer_lag
            for gone in self._lag_labels - lag.keys():
                with contextlib.suppress(KeyError):
                    gauge.remove(self._group, gone.topic, str(gone.partition))
            for key, value in lag.items():
                gauge.labels(group=self._group, topic=key.topic, partition=str(key.partition)).set(
                    value
                )
            self._lag_labels = set(lag)
            await asyncio.sleep(_LAG_REFRESH_S)
