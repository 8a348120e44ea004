"""The oracle: the best mode of every minute, knowing the whole day in advance.

Best is the seed's own criterion made exact: the lightest architecture (Standard, then
Batched, then Writer) whose steady-state capacity, with the day's arrivals and database
condition at that minute, carries the load with `HEADROOM` to spare. A lighter mode has
fewer moving parts and the lowest per-job latency (no batch wait, no second hop); the GPU
pool costs the same in every mode and writers cost extra. When no mode carries the load the
one with the most capacity is best. The per-minute choice is then smoothed by dynamic
programming (Viterbi) with a switching penalty, so the oracle does not switch for a minute
of noise either: it is the schedule a person with the day's figures in hand would pick.
"""

from __future__ import annotations

from ocr_operator.model.enums import Mode
from ocr_operator.simulate import scenario as sc
from ocr_operator.simulate.stack import PUBLISH_S, StackConfig

HEADROOM = 0.85  # the load may use at most this share of a mode's capacity
SWITCH_PENALTY_MIN = 30.0  # a switch costs as much as 30 minutes in a wrong feasible mode
_INFEASIBLE = 5.0  # cost of a minute in a mode that cannot carry the load
MODES = (Mode.STANDARD, Mode.BATCHED, Mode.WRITER)


def capacity(mode: Mode, t: float, rate: float, config: StackConfig) -> float:
    """Jobs per second the mode sustains at minute `t`, with the database loaded by `rate`."""
    n = config.workers
    if mode is Mode.STANDARD:
        db = sc.db_latency(t, 1, rate, n)
        return n / (sc.gpu_seconds(1) + db + sc.JOB_OVERHEAD_S)
    b = sc.MAX_BATCH
    if mode is Mode.BATCHED:
        db = sc.db_latency(t, b, rate / b, n)
        return n * b / (sc.gpu_seconds(b) + db + sc.JOB_OVERHEAD_S)
    gpu = n * b / (sc.gpu_seconds(b) + PUBLISH_S + sc.JOB_OVERHEAD_S)
    m, rows = config.writer_max, sc.WRITER_ROWS
    db = sc.db_latency(t, rows, rate / rows, m)
    return min(gpu, m * rows / (db + sc.JOB_OVERHEAD_S))


def best_per_minute(day: sc.Day, config: StackConfig) -> list[Mode]:
    out = []
    for minute, rate in enumerate(day.arrivals):
        t = minute * 60.0 + 30
        caps = {mode: capacity(mode, t, rate, config) for mode in MODES}
        feasible = [mode for mode in MODES if rate <= HEADROOM * caps[mode]]
        out.append(feasible[0] if feasible else max(MODES, key=lambda m: caps[m]))
    return out


def _cost(mode: Mode, best: Mode, feasible: bool) -> float:
    if mode is best:
        return 0.0
    return 1.0 if feasible else _INFEASIBLE


def oracle(day: sc.Day, config: StackConfig) -> list[Mode]:
    """The smoothed schedule: per minute, the mode of the cheapest path through the day."""
    best = best_per_minute(day, config)
    feasible = [
        {m: rate <= HEADROOM * capacity(m, i * 60.0 + 30, rate, config) for m in MODES}
        for i, rate in enumerate(day.arrivals)
    ]
    costs = {m: _cost(m, best[0], feasible[0][m]) for m in MODES}
    back: list[dict[Mode, Mode]] = []
    for i in range(1, len(best)):
        step: dict[Mode, float] = {}
        came: dict[Mode, Mode] = {}
        for m in MODES:
            prev = min(MODES, key=lambda p: costs[p] + (0 if p is m else SWITCH_PENALTY_MIN))
            step[m] = costs[prev] + (0 if prev is m else SWITCH_PENALTY_MIN)
            step[m] += _cost(m, best[i], feasible[i][m])
            came[m] = prev
        costs = step
        back.append(came)
    mode = min(MODES, key=lambda m: costs[m])
    path = [mode]
    for came in reversed(back):
        mode = came[mode]
        path.append(mode)
    return path[::-1]
