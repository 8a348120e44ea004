"""The safe transition order as a table: (target, observed) -> what to render now."""

from __future__ import annotations

import pytest

from ocr_contract import components, optional_components
from ocr_operator.model import Component, Mode
from ocr_operator.render import Observed, Phase, Plan, plan_transition

S, B, W = Mode.STANDARD, Mode.BATCHED, Mode.WRITER
WRITER = frozenset({Component.WRITER})


@pytest.mark.parametrize(
    ("target", "observed", "worker_mode", "writer", "phase"),
    [
        # fresh stacks
        (S, Observed(), S, False, Phase.STEADY),
        (B, Observed(), B, False, Phase.STEADY),
        (W, Observed(), B, True, Phase.WAITING_FOR_WRITER),  # workers hold until the writer
        # entering Writer from Batched
        (W, Observed(worker_mode=B), B, True, Phase.WAITING_FOR_WRITER),
        (W, Observed(worker_mode=B, present=WRITER), B, True, Phase.WAITING_FOR_WRITER),
        (W, Observed(worker_mode=B, present=WRITER, ready=WRITER), W, True, Phase.STEADY),
        # steady Writer stays Writer even if the writer is momentarily unready
        (W, Observed(worker_mode=W, present=WRITER), W, True, Phase.STEADY),
        # leaving Writer: workers first
        (
            S,
            Observed(worker_mode=W, present=WRITER, ready=WRITER),
            S,
            True,
            Phase.WAITING_FOR_WORKERS,
        ),
        (
            S,
            Observed(worker_mode=S, present=WRITER, workers_settled=False),
            S,
            True,
            Phase.WAITING_FOR_WORKERS,
        ),
        # ... then the drain
        (
            B,
            Observed(worker_mode=B, present=WRITER, drain_lag=3),
            B,
            True,
            Phase.DRAINING_RESULTS,
        ),
        (
            B,
            Observed(worker_mode=B, present=WRITER, drain_lag=None),
            B,
            True,
            Phase.DRAINING_RESULTS,
        ),  # unknown lag never removes the writer
        (B, Observed(worker_mode=B, present=WRITER, drain_lag=0), B, False, Phase.STEADY),
        # Standard <-> Batched needs no ordering
        (S, Observed(worker_mode=B), S, False, Phase.STEADY),
        (B, Observed(worker_mode=S), B, False, Phase.STEADY),
    ],
)
def test_plan_transition(
    target: Mode, observed: Observed, worker_mode: Mode, writer: bool, phase: Phase
) -> None:
    plan = plan_transition(target, observed)
    writing = Component.WRITER in plan.components
    assert (plan.worker_mode, writing, plan.phase) == (worker_mode, writer, phase)
    assert plan.target is target


def test_workers_never_publish_without_a_ready_writer() -> None:
    for ready in (False, True):
        for worker_mode in (None, S, B):
            plan = plan_transition(
                W,
                Observed(
                    worker_mode=worker_mode, present=WRITER, ready=WRITER if ready else frozenset()
                ),
            )
            assert (plan.worker_mode is W) == ready


def _step(observed: Observed, plan: Plan, lag: int) -> Observed:
    """The cluster one reconcile later: the plan applied, components created by it not Ready
    yet, a leaving component's input topic at `lag`."""
    present = plan.components & optional_components()
    return Observed(
        worker_mode=plan.worker_mode,
        present=present,
        ready=observed.present & present,
        workers_settled=plan.worker_mode is observed.worker_mode,
        drain_lag=lag,
    )


@pytest.mark.parametrize("source", [None, *Mode])
@pytest.mark.parametrize("target", list(Mode))
def test_every_transition_of_the_table_keeps_the_order_and_converges(
    source: Mode | None, target: Mode
) -> None:
    observed = Observed()
    if source is not None:  # a stack that runs `source` steadily
        everything = components(source) & optional_components()
        observed = Observed(worker_mode=source, present=everything, ready=everything)
    for step in range(10):
        plan = plan_transition(target, observed)
        # Workers feed only components that run, and switch to a mode only once its
        # components are Ready.
        assert components(plan.worker_mode) <= plan.components
        if plan.worker_mode is not observed.worker_mode:
            assert components(plan.worker_mode) & optional_components() <= observed.ready
        # A component goes only once the workers stopped feeding it and its input drained.
        if observed.present - plan.components:
            assert observed.workers_settled and observed.drain_lag == 0
            assert not components(plan.worker_mode) & (observed.present - plan.components)
        if plan.phase is Phase.STEADY and plan.worker_mode is target:
            assert plan.components == components(target)
            break
        observed = _step(observed, plan, lag=max(0, 2 - step))
    else:
        pytest.fail(f"{source} -> {target} did not converge")
