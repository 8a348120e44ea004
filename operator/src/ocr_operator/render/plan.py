"""The safe order of mode transitions, as a pure function of what is observed, generic over
the contract's topology table (`ocr_contract.TOPOLOGY`).

Entering a mode that runs a component the workers' mode does not (Writer: the writer):
that component and its input topic are Ready before the workers switch and feed it.
Leaving such a mode: the workers stop feeding it (their rollout completes, no pod of the old
template is left), its input topic drains (its group's lag 0), and only then it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ocr_contract import TOPOLOGY, Topic, component_run, components
from ocr_operator.model import Component, Mode, Reason


class Phase(StrEnum):
    """Where a transition stands; STEADY means the target is fully applied."""

    STEADY = "Steady"
    WAITING_FOR_WRITER = "WaitingForWriter"  # a component the target adds is not Ready yet
    WAITING_FOR_WORKERS = "WaitingForWorkers"
    DRAINING_RESULTS = "DrainingResults"  # the input topic of a leaving component drains

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
    # Components that only some modes run: those whose Deployment exists, and is Ready.
    present: frozenset[Component] = field(default_factory=frozenset)
    ready: frozenset[Component] = field(default_factory=frozenset)
    workers_settled: bool = True  # worker rollout complete (no pod of an older template)
    # Lag of the groups of the present components the target does not run, on their input
    # topics; None: unknown.
    drain_lag: int | None = None


@dataclass(frozen=True)
class Plan:
    """What to render now on the way to `target`."""

    target: Mode
    worker_mode: Mode
    components: frozenset[Component]
    phase: Phase

    @property
    def topics(self) -> frozenset[Topic]:
        """Topics of the target and of the workers' mode, and the input of every component
        that runs (a leaving component's input stays until it is gone)."""
        inputs = {component_run(c, self.worker_mode)[1].consumes for c in self.components}
        wanted = TOPOLOGY[self.target].topics | TOPOLOGY[self.worker_mode].topics
        return wanted | {topic for topic in inputs if topic is not None}


def plan_transition(target: Mode, observed: Observed) -> Plan:
    want = components(target)
    # The workers keep their mode (a new stack: the target's starting mode) until the
    # components they are to feed are Ready.
    holding = observed.worker_mode or TOPOLOGY[target].starts_from or target
    starting = want - components(holding) - observed.ready
    if starting and observed.worker_mode is not target:
        return Plan(target, holding, want | components(holding), Phase.WAITING_FOR_WRITER)
    return _retire(target, want, observed)


def _retire(target: Mode, want: frozenset[Component], observed: Observed) -> Plan:
    if observed.worker_mode is not None:
        fed = components(observed.worker_mode) - want
        if fed:  # the workers still feed components the target does not run
            return Plan(target, target, want | fed, Phase.WAITING_FOR_WORKERS)
    leaving = observed.present - want
    if not leaving:
        return Plan(target, target, want, Phase.STEADY)
    if not observed.workers_settled:
        return Plan(target, target, want | leaving, Phase.WAITING_FOR_WORKERS)
    if observed.drain_lag is None or observed.drain_lag > 0:
        return Plan(target, target, want | leaving, Phase.DRAINING_RESULTS)
    return Plan(target, target, want, Phase.STEADY)
