"""The safe order of mode transitions, as a pure function of what is observed.

Entering Writer: the results topic and the writer are Ready before workers publish.
Leaving Writer: workers stop publishing (their rollout completes), the results topic drains
(writer-group lag 0), and only then the writer goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ocr_operator.model import Mode, Reason


class Phase(StrEnum):
    """Where a transition stands; STEADY means the target is fully applied."""

    STEADY = "Steady"
    WAITING_FOR_WRITER = "WaitingForWriter"
    WAITING_FOR_WORKERS = "WaitingForWorkers"
    DRAINING_RESULTS = "DrainingResults"

    @property
    def reason(self) -> Reason:
        return _REASONS[self]


_REASONS = {
    Phase.STEADY: Reason.RECONCILED,
    Phase.WAITING_FOR_WRITER: Reason.WAITING_FOR_WRITER,
    Phase.WAITING_FOR_WORKERS: Reason.WAITING_FOR_WORKERS,
    Phase.DRAINING_RESULTS: Reason.DRAINING_RESULTS,
}


@dataclass(frozen=True)
class Observed:
    """What the cluster and Kafka show now (gathered by the I/O layer)."""

    worker_mode: Mode | None = None  # mode on the live worker Deployment; None: none yet
    writer_exists: bool = False
    writer_ready: bool = False
    workers_settled: bool = True  # worker rollout complete (no pod of an older template)
    results_lag: int | None = None  # writer-group lag on the results topic; None: unknown


@dataclass(frozen=True)
class Plan:
    """What to render now on the way to `target`."""

    target: Mode
    worker_mode: Mode
    include_writer: bool
    phase: Phase

    @property
    def needs_results_topic(self) -> bool:
        return self.include_writer


def plan_transition(target: Mode, observed: Observed) -> Plan:
    if target is Mode.WRITER:
        return _enter_writer(observed)
    return _leave_writer(target, observed)


def _enter_writer(observed: Observed) -> Plan:
    if observed.worker_mode is Mode.WRITER or observed.writer_ready:
        return Plan(Mode.WRITER, Mode.WRITER, include_writer=True, phase=Phase.STEADY)
    # Workers keep writing to the database themselves until the writer is Ready.
    holding = observed.worker_mode or Mode.BATCHED
    return Plan(Mode.WRITER, holding, include_writer=True, phase=Phase.WAITING_FOR_WRITER)


def _leave_writer(target: Mode, observed: Observed) -> Plan:
    if observed.worker_mode is Mode.WRITER:
        return Plan(target, target, include_writer=True, phase=Phase.WAITING_FOR_WORKERS)
    if not observed.writer_exists:
        return Plan(target, target, include_writer=False, phase=Phase.STEADY)
    if not observed.workers_settled:
        return Plan(target, target, include_writer=True, phase=Phase.WAITING_FOR_WORKERS)
    if observed.results_lag is None or observed.results_lag > 0:
        return Plan(target, target, include_writer=True, phase=Phase.DRAINING_RESULTS)
    return Plan(target, target, include_writer=False, phase=Phase.STEADY)
