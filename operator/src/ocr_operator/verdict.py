"""From what reconcile saw to the conditions it writes (pure).

Ready: migrated, topics Ready, no transition phase pending, every Deployment rolled out.
Progressing: on the way there (Migrating, WaitingForTopics, a transition phase, RollingOut),
or ScalingReplicas when only replicas an autoscaler added are pending: the advisor may still
act then. Degraded: the first cause found, from the topics, the migration, the pods, or a
rollout past its progress deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocr_operator.conditions import ConditionUpdate, true_if
from ocr_operator.health import Cause, MigrationState, Rollout
from ocr_operator.model import Component, ConditionType, Reason
from ocr_operator.render import Phase, Plan
from ocr_operator.topics_step import TopicsOutcome

_PHASE_MESSAGES = {
    Phase.WAITING_FOR_WRITER: "waiting for the writer to be Ready before workers publish results",
    Phase.WAITING_FOR_WORKERS: "waiting for workers to stop publishing results",
    Phase.DRAINING_RESULTS: "waiting for the writer group to drain the results topic",
}


_STUCK = (Reason.PROGRESS_DEADLINE_EXCEEDED, Reason.MIGRATION_FAILED)


@dataclass(frozen=True)
class Seen:
    """Everything one reconcile pass observed after applying."""

    plan: Plan
    topics: TopicsOutcome
    migration: MigrationState
    migration_message: str
    rollouts: dict[Component, Rollout]
    causes: list[Cause]
    model_version: str


@dataclass(frozen=True)
class Verdict:
    ready: bool
    progressing: Reason | None  # None: nothing in progress
    message: str
    degraded: Cause | None


# Waits that end with a change of one of the stack's Deployments or Jobs (a migration Job
# finished, a rollout available): with those watched, the change wakes the loop itself.
_WATCHED_WAITS = frozenset({Reason.MIGRATING, Reason.ROLLING_OUT, Reason.SCALING_REPLICAS})


def retry_after(verdict: Verdict, *, poll: float, watched: float | None) -> float | None:
    """When to look again. None once Ready with nothing in progress (the resync). While
    waiting, every `poll` seconds; or every `watched` seconds (a safety net for a missed
    event) when the children are watched, the wait is one a child's event ends and nothing
    is degraded (a crash-looping pod changes no Deployment: it is polled for)."""
    if verdict.ready and verdict.progressing is None:
        return None
    if watched is not None and verdict.progressing in _WATCHED_WAITS and verdict.degraded is None:
        return watched
    return poll


def judge(seen: Seen) -> Verdict:
    degraded = _degraded(seen)
    waiting = _waiting(seen)
    if waiting is not None:
        reason, message = waiting
        if degraded is not None and degraded.message != message:
            message = f"{message}; {degraded.message}"
        return Verdict(False, reason, message, degraded)
    scaling = [r for r in seen.rollouts.values() if r.scaling]
    mode = seen.plan.target.value
    if scaling:
        pending = ", ".join(f"{r.component} {r.available}/{r.desired}" for r in scaling)
        message = f"{mode} mode applied; autoscaled replicas pending ({pending})"
        return Verdict(True, Reason.SCALING_REPLICAS, message, degraded)
    return Verdict(True, None, f"{mode} mode applied", degraded)


def _waiting(seen: Seen) -> tuple[Reason, str] | None:
    if seen.migration is not MigrationState.SUCCEEDED:
        reason = (
            Reason.MIGRATION_FAILED if seen.migration is MigrationState.FAILED else Reason.MIGRATING
        )
        return reason, seen.migration_message
    if not seen.topics.ready:
        return Reason.WAITING_FOR_TOPICS, seen.topics.message
    if seen.plan.phase is not Phase.STEADY:
        return seen.plan.phase.reason, _PHASE_MESSAGES[seen.plan.phase]
    pending = [r for r in seen.rollouts.values() if not r.done]
    if pending:
        parts = [
            f"{r.component} {r.available}/{r.desired} available, {r.updated} updated"
            for r in pending
        ]
        return Reason.ROLLING_OUT, "rolling out: " + "; ".join(parts)
    return None


def _degraded(seen: Seen) -> Cause | None:
    if seen.topics.not_supported is not None:
        return Cause(Reason.NOT_SUPPORTED, seen.topics.not_supported)
    if seen.migration is MigrationState.FAILED:
        return Cause(Reason.MIGRATION_FAILED, seen.migration_message)
    if seen.causes:
        return seen.causes[0]
    stuck = [r.component for r in seen.rollouts.values() if r.deadline_exceeded and not r.done]
    if stuck:
        return Cause(
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            f"rollout of {', '.join(stuck)} made no progress within its deadline",
        )
    return None


def condition_updates(seen: Seen, verdict: Verdict) -> list[ConditionUpdate]:
    degraded = verdict.degraded
    not_ready_reason = (
        degraded.reason if degraded is not None else verdict.progressing or Reason.RECONCILED
    )
    # A rollout past its deadline or a failed migration waits for a person, not for time.
    progressing = verdict.progressing is not None and not (
        degraded is not None and degraded.reason in _STUCK
    )
    return [
        ConditionUpdate(
            ConditionType.READY,
            true_if(verdict.ready),
            Reason.RECONCILED if verdict.ready else not_ready_reason,
            verdict.message,
        ),
        ConditionUpdate(
            ConditionType.PROGRESSING,
            true_if(progressing),
            (verdict.progressing or Reason.RECONCILED)
            if progressing or degraded is None
            else degraded.reason,
            verdict.message,
        ),
        ConditionUpdate(
            ConditionType.DEGRADED,
            true_if(degraded is not None),
            degraded.reason if degraded is not None else Reason.AS_EXPECTED,
            degraded.message if degraded is not None else "",
        ),
        ConditionUpdate(
            ConditionType.TOPICS_READY,
            true_if(seen.topics.ready and seen.topics.not_supported is None),
            seen.topics.reason,
            seen.topics.not_supported or seen.topics.message,
        ),
        ConditionUpdate(
            ConditionType.MIGRATED,
            true_if(seen.migration is MigrationState.SUCCEEDED),
            {
                MigrationState.SUCCEEDED: Reason.MIGRATION_SUCCEEDED,
                MigrationState.FAILED: Reason.MIGRATION_FAILED,
                MigrationState.RUNNING: Reason.MIGRATING,
            }[seen.migration],
            seen.migration_message,
        ),
        _model_ready(seen),
    ]


def _model_ready(seen: Seen) -> ConditionUpdate:
    """Workers report Ready only once their engine loaded the model (runtime /readyz)."""
    worker = seen.rollouts.get(Component.WORKER)
    loaded = worker is not None and worker.done and worker.ready >= worker.desired
    count = f"{worker.ready}/{worker.desired}" if worker is not None else "0/0"
    return ConditionUpdate(
        ConditionType.MODEL_READY,
        true_if(loaded),
        Reason.MODEL_LOADED if loaded else Reason.MODEL_LOADING,
        f"{count} worker pods loaded model {seen.model_version}",
    )
