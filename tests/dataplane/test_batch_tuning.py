"""Unit tests of online batch tuning, driven by a synthetic engine whose cost per batch is
known (a fixed cost per call plus a cost per image), so the optimum is computable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from ocr_runtime.worker.batcher import MicroBatcher
from ocr_runtime.worker.tuning import BatchSample, BatchTuner, TunedLimits, TuningStep

TARGET_S = 0.2
CEILING = TunedLimits(max_size=32, max_wait_s=0.05)
FILL_S = 0.005  # a saturated queue fills any batch at once


@dataclass(frozen=True)
class SyntheticEngine:
    per_call_s: float
    per_image_s: float

    def cost(self, size: int) -> float:
        return self.per_call_s + self.per_image_s * size


def largest_within(engine: SyntheticEngine, budget_s: float) -> int:
    return max(b for b in range(1, CEILING.max_size + 1) if FILL_S + engine.cost(b) <= budget_s)


def run_saturated(tuner: BatchTuner, engine: SyntheticEngine, batches: int) -> list[float]:
    """Every batch fills to the current limit; returns each batch's latency."""
    latencies = []
    for _ in range(batches):
        size = tuner.limits.max_size
        sample = BatchSample(size=size, limit=size, waited_s=FILL_S, engine_s=engine.cost(size))
        tuner.observe(sample)
        latencies.append(sample.latency_s)
    return latencies


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * len(ordered)) - 1]


def test_saturated_load_converges_to_the_largest_batch_within_the_target() -> None:
    engine = SyntheticEngine(per_call_s=0.030, per_image_s=0.015)
    tuner = BatchTuner(target_s=TARGET_S, ceiling=CEILING, window=10, headroom=0.8)
    latencies = run_saturated(tuner, engine, batches=400)
    # It grows while a window's p95 is under 80 % of the target and stops at the first size
    # above it: 9 images (0.17 s) here, 11 would be the last within the target itself.
    assert tuner.limits.max_size == largest_within(engine, 0.8 * TARGET_S) + 1 == 9
    assert p95(latencies[-100:]) <= TARGET_S
    # Full batches leave no room to wait for more.
    assert tuner.limits.max_wait_s == 0.0


def test_an_engine_that_slows_down_halves_the_batch_within_one_window() -> None:
    fast = SyntheticEngine(per_call_s=0.030, per_image_s=0.015)
    slow = SyntheticEngine(per_call_s=0.060, per_image_s=0.030)
    tuner = BatchTuner(target_s=TARGET_S, ceiling=CEILING, window=10)
    run_saturated(tuner, fast, batches=400)
    assert tuner.limits.max_size == 9
    run_saturated(tuner, slow, batches=10)
    assert tuner.limits.max_size == 4  # 9 // 2: 0.185 s, back within the target
    latencies = run_saturated(tuner, slow, batches=200)
    assert max(latencies) <= TARGET_S  # and it does not climb back over it
    assert tuner.limits.max_size == 4


def test_light_traffic_does_not_grow_the_limit_and_keeps_the_wait_within_the_target() -> None:
    engine = SyntheticEngine(per_call_s=0.030, per_image_s=0.015)
    tuner = BatchTuner(target_s=TARGET_S, ceiling=CEILING, window=10)
    steps = []
    for _ in range(300):  # one job per batch: the traffic never fills more
        limit = tuner.limits.max_size
        wait = tuner.limits.max_wait_s
        steps.append(
            tuner.observe(BatchSample(size=1, limit=limit, waited_s=wait, engine_s=engine.cost(1)))
        )
    assert tuner.limits.max_size == 2  # grew once while size 1 was "full", then held
    assert steps.count(TuningStep.INCREASE) == 1
    assert tuner.limits.max_wait_s == CEILING.max_wait_s  # 0.05 s + 0.045 s fits easily


def test_a_long_engine_call_leaves_only_what_the_target_allows_to_wait() -> None:
    engine = SyntheticEngine(per_call_s=0.120, per_image_s=0.0)
    tuner = BatchTuner(target_s=TARGET_S, ceiling=CEILING, window=5, headroom=0.8)
    for _ in range(5):
        tuner.observe(BatchSample(size=1, limit=2, waited_s=0.0, engine_s=engine.cost(1)))
    assert tuner.limits.max_wait_s == pytest.approx(0.8 * TARGET_S - 0.120)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        BatchTuner(target_s=0, ceiling=CEILING)
    with pytest.raises(ValueError):
        BatchTuner(target_s=1, ceiling=CEILING, headroom=1.5)


async def test_resized_batcher_forms_the_next_batches_with_the_new_limits() -> None:
    queue: asyncio.Queue[list[int]] = asyncio.Queue()

    async def fetch(room: int) -> Sequence[int]:
        try:
            return await asyncio.wait_for(queue.get(), 0.05)
        except TimeoutError:
            return []

    batcher = MicroBatcher(fetch, max_size=8, max_wait_s=30.0, max_cost=1000, cost=lambda _: 1)
    await batcher.start()
    queue.put_nowait(list(range(12)))
    first = await asyncio.wait_for(batcher.next_batch(), 5.0)
    batcher.resize(max_size=3, max_wait_s=0.0)
    second = await asyncio.wait_for(batcher.next_batch(), 5.0)
    third = await asyncio.wait_for(batcher.next_batch(), 5.0)
    await batcher.aclose()
    assert first is not None and second is not None and third is not None
    assert [len(first.items), len(second.items), len(third.items)] == [8, 3, 1]
    with pytest.raises(ValueError):
        batcher.resize(max_size=0, max_wait_s=0.0)
