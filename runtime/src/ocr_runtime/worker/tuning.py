"""Online batch tuning within a latency objective.

A batch's latency (the wait for it to fill, then the engine call) grows with its size, and
an accelerator's throughput grows with batch size until it saturates: under a latency
target the best batch is the largest whose latency stays within it. The tuner finds it
online with additive increase, multiplicative decrease (AIMD, as TCP's congestion window):

- every `window` batches it takes the p95 of their latencies;
- above the target, the size limit halves (a slow database or a larger image mix shows at
  once, and halving leaves room fast);
- below `headroom` x target, and only when the batches were full (a bigger limit changes
  nothing when traffic does not fill the current one), the size limit grows by one;
- the wait limit is what the target leaves after the engine's p95 time, never more than the
  configured wait, so a batch that does not fill never waits past the target either.

The latency judged is the one batching adds inside the worker (first item's arrival to the
end of its engine call), not the queueing before it: shrinking batches when the queue is
long would lower throughput and lengthen the queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class TuningStep(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class TunedLimits:
    max_size: int
    max_wait_s: float


@dataclass(frozen=True, slots=True)
class BatchSample:
    size: int  # jobs in the batch
    limit: int  # the size limit it was formed under
    waited_s: float  # first item's arrival to the batch's release
    engine_s: float  # the engine call

    @property
    def latency_s(self) -> float:
        return self.waited_s + self.engine_s


class BatchTuner:
    def __init__(
        self,
        *,
        target_s: float,
        ceiling: TunedLimits,
        window: int = 20,
        headroom: float = 0.8,
        full_share: float = 0.8,
    ) -> None:
        if target_s <= 0 or window < 1 or not 0 < headroom <= 1 or not 0 < full_share <= 1:
            raise ValueError("target_s > 0, window >= 1, headroom and full_share in (0, 1]")
        self._target_s = target_s
        self._ceiling = ceiling
        self._window = window
        self._headroom = headroom
        self._full_share = full_share
        # Start small: the first windows are cheap to grow out of, a first window far above
        # the target is not.
        self._limits = TunedLimits(max_size=1, max_wait_s=ceiling.max_wait_s)
        self._samples: list[BatchSample] = []

    @property
    def limits(self) -> TunedLimits:
        return self._limits

    def observe(self, sample: BatchSample) -> TuningStep | None:
        """Record one batch; every `window` batches, decide and return the step taken."""
        self._samples.append(sample)
        if len(self._samples) < self._window:
            return None
        samples, self._samples = self._samples, []
        step = self._step(samples)
        self._limits = TunedLimits(
            max_size=self._next_size(step), max_wait_s=self._next_wait(samples)
        )
        return step

    def _step(self, samples: list[BatchSample]) -> TuningStep:
        latency_p95 = _p95([s.latency_s for s in samples])
        if latency_p95 > self._target_s:
            return TuningStep.DECREASE
        full = sum(1 for s in samples if s.size >= s.limit)
        if latency_p95 <= self._headroom * self._target_s and full >= self._full_share * len(
            samples
        ):
            return TuningStep.INCREASE
        return TuningStep.HOLD

    def _next_size(self, step: TuningStep) -> int:
        size = self._limits.max_size
        if step is TuningStep.DECREASE:
            return max(1, size // 2)
        if step is TuningStep.INCREASE:
            return min(self._ceiling.max_size, size + 1)
        return size

    def _next_wait(self, samples: list[BatchSample]) -> float:
        engine_p95 = _p95([s.engine_s for s in samples])
        left = self._headroom * self._target_s - engine_p95
        return max(0.0, min(self._ceiling.max_wait_s, left))


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
