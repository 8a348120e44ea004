"""One simulated stack, advanced in fixed steps (a fluid model: queues hold fractional jobs).

The GPU workers are a fixed pool (GPUs are reserved capacity); in Writer mode the writers
scale on their lag like the rendered HPA does, up to a maxReplicas that the advisor's replica
cap can lower. A mode change rolls the workers for `ROLLOUT_S`, at half capacity.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ocr_operator.model.enums import Mode
from ocr_operator.simulate import scenario as sc

STEP_S = 5.0
ROLLOUT_S = 60.0
POD_START_S = 30.0
HPA_PERIOD_S = 15.0
HPA_DOWN_WINDOW_S = 300.0
PUBLISH_S = 0.003
# p95 of a write over its mean (a long-tailed latency distribution)
P95_OVER_MEAN = 2.0


@dataclass
class Pool:
    """Replicas of one Deployment: ready ones and ones still starting."""

    ready: int
    starting: list[float] = field(default_factory=list)  # when each becomes ready
    recommendations: deque[tuple[float, int]] = field(default_factory=deque)

    @property
    def total(self) -> int:
        return self.ready + len(self.starting)

    def advance(self, now: float) -> None:
        done = [at for at in self.starting if at <= now]
        self.ready += len(done)
        self.starting = [at for at in self.starting if at > now]

    def scale(self, now: float, desired: int) -> None:
        """The HPA's rule: up at once, down to the highest recommendation of the last
        `HPA_DOWN_WINDOW_S`, one pod at a time."""
        self.recommendations.append((now, desired))
        while self.recommendations and self.recommendations[0][0] < now - HPA_DOWN_WINDOW_S:
            self.recommendations.popleft()
        target = max(d for _, d in self.recommendations) if desired < self.total else desired
        while self.total < target:
            self.starting.append(now + POD_START_S)
        if self.total > target:
            if self.starting:
                self.starting.pop()
            elif self.ready > 0:
                self.ready -= 1


@dataclass(frozen=True)
class StackConfig:
    workers: int = 3
    writer_min: int = 1
    writer_max: int = 6
    writer_lag_per_replica: int = 200


@dataclass
class Sample:
    """What one step leaves for the metrics (the advisor's Prometheus)."""

    t: float
    busy: float  # share of the step the inference thread computed, averaged over workers
    consumed: float  # jobs taken from the jobs topic
    lag: float  # jobs + results waiting
    db_p95: float | None  # None: nothing written this step
    wait: float  # the current end-to-end wait estimate (for the synchronous API)


@dataclass
class Stack:
    day: sc.Day
    config: StackConfig
    mode: Mode = Mode.STANDARD
    rolling_until: float = -1.0
    jobs: float = 0.0
    results: float = 0.0
    db_mean: float = sc.DB_BASE_S
    arrived: float = 0.0
    completed: float = 0.0
    writer_cap: int | None = None
    workers: Pool = field(default_factory=lambda: Pool(ready=3))
    writers: Pool = field(default_factory=lambda: Pool(ready=0))
    worker_seconds: float = 0.0
    writer_seconds: float = 0.0
    last_t: float = 0.0

    def change_mode(self, mode: Mode, now: float) -> None:
        if mode is not self.mode:
            self.mode = mode
            self.rolling_until = now + ROLLOUT_S
            if mode is Mode.WRITER and self.writers.total == 0:
                self.writers.starting.append(now + POD_START_S)

    @property
    def rolling(self) -> bool:
        return self.rolling_until > 0 and self.rolling_until > self.last_t

    def step(self, t: float) -> Sample:
        self.last_t = t
        self.workers.advance(t)
        self.writers.advance(t)
        arriving = self.day.arrival_rate(t) * STEP_S
        self.jobs += arriving
        self.arrived += arriving
        busy, consumed, worker_tx = self._work(t, arriving)
        written, writer_tx, writer_rows = self._write(t)
        self._settle_db(t, worker_tx + writer_tx, writer_rows)
        if int(t) % int(HPA_PERIOD_S) == 0:
            self._autoscale(t)
        self.worker_seconds += self.workers.total * STEP_S
        self.writer_seconds += self.writers.total * STEP_S
        rate = max(consumed + written, 1e-9) / STEP_S
        wrote = worker_tx + writer_tx > 0
        return Sample(
            t=t,
            busy=busy,
            consumed=consumed,
            lag=self.jobs + self.results,
            db_p95=P95_OVER_MEAN * self.db_mean if wrote else None,
            wait=(self.jobs + self.results) / rate + self.cycle_s(),
        )

    def cycle_s(self) -> float:
        """Service time of one job once a worker takes it (no queueing)."""
        if self.mode is Mode.STANDARD:
            return sc.gpu_seconds(1) + self.db_mean + sc.JOB_OVERHEAD_S
        return sc.gpu_seconds(4) + sc.BATCH_WAIT_S + self.db_mean + sc.JOB_OVERHEAD_S

    def _work(self, t: float, arriving: float) -> tuple[float, float, float]:
        """GPU workers: (busy share, jobs consumed, database transactions). Jobs that
        arrive during the step are spread over it, not a backlog at its start."""
        n = self.workers.ready * (0.5 if self.rolling else 1.0)
        if n <= 0:
            return 0.0, 0.0, 0.0
        per_worker = self.day.arrival_rate(t) / n
        writes = self.mode is not Mode.WRITER
        extra = sc.JOB_OVERHEAD_S + (self.db_mean if writes else PUBLISH_S)
        b, wait = 1.0, 0.0
        if self.mode is not Mode.STANDARD:
            b = sc.batch_size(per_worker, max(0.0, self.jobs - arriving) / n, extra)
            wait = sc.BATCH_WAIT_S if b < sc.MAX_BATCH else 0.0
        cycle = sc.gpu_seconds(b) + extra + wait
        capacity = n * b / cycle * STEP_S
        consumed = min(self.jobs, capacity)
        self.jobs -= consumed
        share = consumed / capacity if capacity > 0 else 0.0
        busy = share * sc.gpu_seconds(b) / cycle
        if writes:
            self.completed += consumed
            return busy, consumed, consumed / b
        self.results += consumed
        return busy, consumed, 0.0

    def _write(self, t: float) -> tuple[float, float, float]:
        """Writers: (results written, transactions, rows per transaction)."""
        m = self.writers.ready
        if m <= 0 or self.results <= 0:
            return 0.0, 0.0, 0.0
        rows = min(float(sc.WRITER_ROWS), max(1.0, self.results / m))
        capacity = m * rows / (self.db_mean + sc.JOB_OVERHEAD_S) * STEP_S
        written = min(self.results, capacity)
        self.results -= written
        self.completed += written
        if self.mode is not Mode.WRITER and self.results <= 0:
            self.writers = Pool(ready=0)  # drained: the writer goes
        return written, written / rows, rows

    def _settle_db(self, t: float, transactions: float, rows: float) -> None:
        clients = self.workers.ready if self.mode is not Mode.WRITER else self.writers.ready
        tps = transactions / STEP_S
        target = sc.db_latency(t, max(rows, 1.0), tps, clients)
        self.db_mean += 0.5 * (target - self.db_mean)

    def _autoscale(self, t: float) -> None:
        if self.mode is not Mode.WRITER:
            return
        c = self.config
        most = c.writer_max if self.writer_cap is None else min(c.writer_max, self.writer_cap)
        most = max(c.writer_min, most)
        desired = math.ceil(self.results / c.writer_lag_per_replica)
        self.writers.scale(t, max(c.writer_min, min(most, desired)))
