"""A simulated day: the stack's physics every step, the operator's advisor every interval.

The advisor's decisions come from the operator's own code: `advisor.evaluate.evaluate` and
`advisor.report.build_report`, on a status dict kept the way the apiserver keeps it (JSON
merge patches), with the spec defaults of `spec.advisor`. Only Prometheus is replaced: the
signals are computed from the simulated samples over the same ranges (rateWindowSeconds,
baselineWindowSeconds) that the default queries use.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ocr_operator.advisor.backpressure import replica_caps
from ocr_operator.advisor.evaluate import evaluate
from ocr_operator.advisor.evidence import Evidence, Observation
from ocr_operator.advisor.report import build_report
from ocr_operator.model import Component, Mode, OCRServingSpec, Policy
from ocr_operator.simulate import scenario as sc
from ocr_operator.simulate.stack import STEP_S, Sample, Stack, StackConfig

T0 = datetime(2026, 3, 2, tzinfo=UTC)
API_FAST_P95_S = 0.03
Body = dict[str, Any]


def merge_patch(target: Body, patch: Body) -> Body:
    """RFC 7386, as the apiserver applies the advisor's status patch."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        elif isinstance(value, dict):
            out[key] = merge_patch({}, value)
        else:
            out[key] = value
    return out


@dataclass
class Signals:
    """The simulated Prometheus: samples of the last baseline window."""

    rate_steps: int
    baseline_steps: int
    samples: deque[Sample] = field(default_factory=deque)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        while len(self.samples) > self.baseline_steps:
            self.samples.popleft()

    def evidence(self, at: datetime) -> Evidence:
        recent = list(self.samples)[-self.rate_steps :]
        wait = recent[-1].wait
        sync = sc.SYNC_SHARE if wait > sc.SYNC_TIMEOUT_S else 0.0
        return Evidence(
            at=at,
            gpu_utilization=100 * sum(s.busy for s in recent) / len(recent),
            lag=recent[-1].lag,
            lag_trend=_slope([(s.t, s.lag) for s in recent]),
            consume_rate=sum(s.consumed for s in recent) / (len(recent) * STEP_S),
            db_write_p95=_p95_of(recent),
            db_write_p95_baseline=_p95_of(list(self.samples)),
            api_p95=API_FAST_P95_S + min(wait, sc.SYNC_TIMEOUT_S),
            api_p95_baseline=API_FAST_P95_S + min(_mean_wait(list(self.samples)), 30.0),
            sync_timeouts=sync * recent[-1].consumed / STEP_S,
        )


def _slope(points: list[tuple[float, float]]) -> float:
    """Least squares, like PromQL's deriv()."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def _p95_of(samples: list[Sample]) -> float:
    values = [s.db_p95 for s in samples if s.db_p95 is not None]
    return max(values) if len(values) < 3 else sorted(values)[int(0.95 * (len(values) - 1))]


def _mean_wait(samples: list[Sample]) -> float:
    return sum(s.wait for s in samples) / len(samples)


@dataclass
class Run:
    """What one simulated day produced, per step and per evaluation."""

    name: str
    modes: list[Mode] = field(default_factory=list)  # per step
    arrived: list[float] = field(default_factory=list)  # cumulative, per step
    completed: list[float] = field(default_factory=list)  # cumulative, per step
    service: list[float] = field(default_factory=list)  # per step
    lag: list[float] = field(default_factory=list)  # per step
    pods: list[tuple[int, int]] = field(default_factory=list)  # (workers, writers) per step
    transitions: list[Body] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)
    worker_seconds: float = 0.0
    writer_seconds: float = 0.0


def stack_spec(mode: Mode, policy: Policy) -> OCRServingSpec:
    return OCRServingSpec.model_validate(
        {
            "architecture": {"mode": mode.value, "policy": policy.value},
            "worker": {"replicas": 3},
            "writer": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 6}},
            "kafka": {"partitions": 12, "bootstrapServers": "kafka:9092"},
            "database": {"urlSecretRef": {"name": "db"}},
        }
    )


def simulate(name: str, mode: Mode, policy: Policy, day: sc.Day) -> Run:
    """One day; under Manual the mode stays `mode` (a fixed-mode baseline)."""
    spec = stack_spec(mode, policy)
    stack = Stack(day=day, config=StackConfig(), mode=mode)
    if mode is Mode.WRITER:
        stack.writers.ready = 1
    advisor = spec.advisor
    signals = Signals(
        rate_steps=int(advisor.rate_window_seconds / STEP_S),
        baseline_steps=int(advisor.baseline_window_seconds / STEP_S),
    )
    status: Body = {"activeMode": mode.value, "specMode": mode.value}
    run = Run(name=name)
    every = int(advisor.interval_seconds / STEP_S)
    for index in range(int(sc.DAY_S / STEP_S)):
        t = index * STEP_S
        signals.add(stack.step(t))
        if policy is not Policy.MANUAL and index % every == every - 1:
            status = _advise(spec, status, stack, signals, t=t, run=run)
        run.modes.append(stack.mode)
        run.arrived.append(stack.arrived)
        run.completed.append(stack.completed)
        run.service.append(stack.cycle_s())
        run.lag.append(stack.jobs + stack.results)
        run.pods.append((stack.workers.total, stack.writers.total))
    run.worker_seconds, run.writer_seconds = stack.worker_seconds, stack.writer_seconds
    run.transitions = list(status.get("transitions") or [])
    return run


def _advise(
    spec: OCRServingSpec, status: Body, stack: Stack, signals: Signals, *, t: float, run: Run
) -> Body:
    """One evaluation of the real advisor, then what the operator's reconcile does with it."""
    now = T0 + timedelta(seconds=t)
    status = _observed_status(status, stack)
    evaluation = evaluate(spec, status, {}, now, Observation(signals.evidence(now)))
    report = build_report(evaluation, status, 1)
    status = merge_patch(status, report.patch)
    run.events += [(t, event.reason.value, event.message) for event in report.events]
    stack.change_mode(Mode(status["activeMode"]), t)
    stack.writer_cap = replica_caps(status).get(Component.WRITER)
    return status


def _observed_status(status: Body, stack: Stack) -> Body:
    """What the reconcile writes: replicas per component and Progressing while rolling."""
    progressing = "True" if stack.rolling else "False"
    condition = {"type": "Progressing", "status": progressing, "reason": "Sim",
                 "lastTransitionTime": "", "message": ""}  # fmt: skip
    others = [c for c in status.get("conditions") or [] if c.get("type") != "Progressing"]
    workers, writers = stack.workers, stack.writers
    components = {"worker": {"desired": workers.total, "ready": workers.ready},
                  "writer": {"desired": writers.total, "ready": writers.ready}}  # fmt: skip
    return {**status, "conditions": [condition, *others], "components": components}
