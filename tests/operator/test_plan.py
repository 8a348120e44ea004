"""The safe transition order as a table: (target, observed) -> what to render now."""

from __future__ import annotations

import pytest

from ocr_operator.model import Mode
from ocr_operator.render import Observed, Phase, plan_transition

S, B, W = Mode.STANDARD, Mode.BATCHED, Mode.WRITER


@pytest.mark.parametrize(
    ("target", "observed", "worker_mode", "writer", "phase"),
    [
        # fresh stacks
        (S, Observed(), S, False, Phase.STEADY),
        (B, Observed(), B, False, Phase.STEADY),
        (W, Observed(), B, True, Phase.WAITING_FOR_WRITER),  # workers hold until the writer
        # entering Writer from Batched
        (W, Observed(worker_mode=B), B, True, Phase.WAITING_FOR_WRITER),
        (W, Observed(worker_mode=B, writer_exists=True), B, True, Phase.WAITING_FOR_WRITER),
        (W, Observed(worker_mode=B, writer_exists=True, writer_ready=True), W, True, Phase.STEADY),
        # steady Writer stays Writer even if the writer is momentarily unready
        (W, Observed(worker_mode=W, writer_exists=True), W, True, Phase.STEADY),
        # leaving Writer: workers first
        (
            S,
            Observed(worker_mode=W, writer_exists=True, writer_ready=True),
            S,
            True,
            Phase.WAITING_FOR_WORKERS,
        ),
        (
            S,
            Observed(worker_mode=S, writer_exists=True, workers_settled=False),
            S,
            True,
            Phase.WAITING_FOR_WORKERS,
        ),
        # ... then the drain
        (
            B,
            Observed(worker_mode=B, writer_exists=True, results_lag=3),
            B,
            True,
            Phase.DRAINING_RESULTS,
        ),
        (
            B,
            Observed(worker_mode=B, writer_exists=True, results_lag=None),
            B,
            True,
            Phase.DRAINING_RESULTS,
        ),  # unknown lag never removes the writer
        (B, Observed(worker_mode=B, writer_exists=True, results_lag=0), B, False, Phase.STEADY),
        # Standard <-> Batched needs no ordering
        (S, Observed(worker_mode=B), S, False, Phase.STEADY),
        (B, Observed(worker_mode=S), B, False, Phase.STEADY),
    ],
)
def test_plan_transition(
    target: Mode, observed: Observed, worker_mode: Mode, writer: bool, phase: Phase
) -> None:
    plan = plan_transition(target, observed)
    assert (plan.worker_mode, plan.include_writer, plan.phase) == (worker_mode, writer, phase)
    assert plan.target is target


def test_workers_never_publish_without_a_ready_writer() -> None:
    for ready in (False, True):
        for worker_mode in (None, S, B):
            plan = plan_transition(
                W, Observed(worker_mode=worker_mode, writer_exists=True, writer_ready=ready)
            )
            assert (plan.worker_mode is W) == ready
