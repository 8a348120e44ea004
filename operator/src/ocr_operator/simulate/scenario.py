"""The simulated day and the physics of one stack (pure, deterministic).

Every number here is an assumption of the model, chosen to be of the order of a real OCR
stack; docs/advisor.md lists them next to the results.

- Arrivals: a quiet night, a morning ramp (07:00-10:00), a daytime plateau, a burst (14:00,
  20 minutes at 2x), an evening decline; +-6 % deterministic noise per minute.
- GPU: a batch of b images takes `GPU_FIXED_S + GPU_PER_IMAGE_S * b` (80 ms for one image,
  380 ms for 16: batching gives about 3.4x, like the dynamic batching figures of Triton).
- Database: a transaction takes `db_base` seconds plus a little per row, times a queueing
  factor 1 / (1 - load), where the load is the transaction rate over the capacity, and the
  capacity falls with the number of concurrent clients beyond a knee (lock contention). From
  16:00 to 17:30 the database is slow: its commit latency degrades over ten minutes to
  1.5 s (a replication or storage stall), recovers over ten minutes at the end, and its
  capacity drops to a tenth.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

DAY_S = 86_400
GPU_FIXED_S = 0.060
GPU_PER_IMAGE_S = 0.020
MAX_BATCH = 16
BATCH_WAIT_S = 0.02  # the batcher's max wait (the seed's 10-30 ms)
JOB_OVERHEAD_S = 0.004  # fetch, decode, offset commit per cycle
WRITER_ROWS = 64  # results the writer puts in one transaction
DB_CAPACITY_TPS = 400.0  # transactions per second the healthy database sustains
DB_BASE_S = 0.008  # commit latency of the idle database
DB_SLOW_BASE_S = 1.5  # commit latency at the worst of the slow episode
DB_ROW_S = 0.0005  # per row written in a transaction
DB_KNEE = 4  # concurrent clients before lock contention costs capacity
DB_CONTENTION = 0.25  # capacity lost per client beyond the knee (as a fraction)
SLOW_DB = (16 * 3600, 17 * 3600 + 1800)  # the slow database episode
SLOW_DB_RAMP_S = 600.0
SYNC_SHARE = 0.05  # share of requests sent to the synchronous endpoint
SYNC_TIMEOUT_S = 30.0


def gpu_seconds(batch: float) -> float:
    return GPU_FIXED_S + GPU_PER_IMAGE_S * batch


def _smooth(x: float) -> float:
    """0 -> 1 over [0, 1], smooth at both ends."""
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _shape(t: float) -> float:
    """Jobs per second at second `t` of the day, without noise."""
    h = t / 3600
    night, day = 2.0, 36.0
    if h < 7:
        rate = night
    elif h < 10:
        rate = night + (day - night) * _smooth((h - 7) / 3)
    elif h < 18:
        rate = day * (1 + 0.08 * math.sin((h - 10) / 8 * 2 * math.pi))
    else:
        rate = day + (night - day) * _smooth((h - 18) / 5)
    if 14 * 3600 <= t < 14 * 3600 + 1200:
        rate *= 2.0
    return rate


@dataclass(frozen=True)
class Day:
    """The exogenous inputs, per minute: arrival rate and database condition."""

    arrivals: tuple[float, ...]  # jobs per second, one value per minute

    @classmethod
    def build(cls, seed: int = 7) -> Day:
        noise = random.Random(seed)
        rates = tuple(
            _shape(minute * 60 + 30) * (1 + noise.uniform(-0.06, 0.06))
            for minute in range(DAY_S // 60)
        )
        return cls(arrivals=rates)

    def arrival_rate(self, t: float) -> float:
        return self.arrivals[min(int(t // 60), len(self.arrivals) - 1)]


def db_slowness(t: float) -> float:
    """0 (healthy) to 1 (the worst of the slow episode), ramping in and out."""
    start, end = SLOW_DB
    if not start <= t < end:
        return 0.0
    return _smooth(min((t - start) / SLOW_DB_RAMP_S, (end - t) / SLOW_DB_RAMP_S))


def db_capacity(t: float, clients: float) -> float:
    """Transactions per second the database sustains with `clients` concurrent clients."""
    base = DB_CAPACITY_TPS * (1 - 0.9 * db_slowness(t))
    return base / (1 + DB_CONTENTION * max(0.0, clients - DB_KNEE))


def db_latency(t: float, rows: float, tps: float, clients: float) -> float:
    """Mean latency of one transaction of `rows` rows at `tps` transactions per second."""
    base = DB_BASE_S + (DB_SLOW_BASE_S - DB_BASE_S) * db_slowness(t)
    load = tps / db_capacity(t, clients)
    return (base + DB_ROW_S * rows) / max(0.04, 1 - load)


def batch_size(per_worker_rate: float, backlog_per_worker: float, cycle_extra: float) -> float:
    """The batch a busy micro-batcher forms: full when a backlog waits, else what arrives
    during one cycle (at least one image)."""
    if backlog_per_worker >= MAX_BATCH:
        return float(MAX_BATCH)
    b = 1.0
    for _ in range(4):  # what arrives while the previous batch runs, plus the max wait
        b = per_worker_rate * (gpu_seconds(b) + cycle_extra + BATCH_WAIT_S)
        b = min(float(MAX_BATCH), max(1.0, b, backlog_per_worker))
    return b
