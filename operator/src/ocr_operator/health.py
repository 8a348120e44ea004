"""What the children say about the stack: rollouts, pod failures, the migration Job.

Pure functions over the objects the apiserver returned; reconcile turns the verdict into
conditions. A rollout counts as done only when the Deployment controller observed the
latest generation, every pod runs the latest template and enough of them are available, so
a new image that crash-loops never reads Ready; its cause comes from the pods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ocr_operator.model import Reason

Body = dict[str, Any]

# Runtime start failures write this prefix into the termination message (ocr-runtime's
# engine check), so the operator can name the cause instead of a bare CrashLoopBackOff.
ENGINE_MISMATCH_MARKER = "engine mismatch"
# Likewise when the worker, or its fetch-model init container, refuses or cannot get the model.
MODEL_MARKERS = ("model refused", "model unreachable")
# And when a service (Kafka) refused the pod's credentials or certificate.
ACCESS_DENIED_MARKER = "access denied"
# A crash loop whose last message carries one of these markers is named by it.
_NAMED_CAUSES = (
    (MODEL_MARKERS, Reason.MODEL_REFUSED),
    ((ACCESS_DENIED_MARKER,), Reason.ACCESS_DENIED),
)
_MARKERS = (ENGINE_MISMATCH_MARKER, *MODEL_MARKERS, ACCESS_DENIED_MARKER)

_WAITING_CAUSES = {
    "ErrImagePull": Reason.IMAGE_PULL_BACK_OFF,
    "ImagePullBackOff": Reason.IMAGE_PULL_BACK_OFF,
    "InvalidImageName": Reason.IMAGE_PULL_BACK_OFF,
    "CrashLoopBackOff": Reason.CRASH_LOOP_BACK_OFF,
    "RunContainerError": Reason.CRASH_LOOP_BACK_OFF,
    "CreateContainerConfigError": Reason.CONTAINER_CONFIG_ERROR,
    "CreateContainerError": Reason.CONTAINER_CONFIG_ERROR,
}


@dataclass(frozen=True)
class Cause:
    """Why the stack is Degraded (reason for the condition, message for people)."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class Rollout:
    """One Deployment's progress towards its latest template."""

    component: str
    desired: int
    ready: int
    updated: int
    available: int
    image: str | None
    done: bool  # latest generation observed, no old pod left, enough updated pods available
    scaling: bool  # done, but replicas an autoscaler added are not available yet
    deadline_exceeded: bool

    def wire(self) -> Body:
        out: Body = {
            "desired": self.desired,
            "ready": self.ready,
            "updated": self.updated,
            "available": self.available,
        }
        if self.image:
            out["image"] = self.image
        return out


def rollout(component: str, deployment: Body, floor: int | None = None) -> Rollout:
    """`floor`: fewest available replicas that count as rolled out (the autoscaler's
    minReplicas); None: every desired replica."""
    meta, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    observed = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0))
    only_latest = int(status.get("replicas", 0)) == updated
    enough = available >= (desired if floor is None else min(desired, floor))
    done = observed and only_latest and updated >= desired and enough
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    return Rollout(
        component=component,
        desired=desired,
        ready=int(status.get("readyReplicas", 0)),
        updated=updated,
        available=available,
        image=containers[0].get("image"),
        done=done,
        scaling=done and available < desired,
        deadline_exceeded=any(
            c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
            for c in status.get("conditions") or []
        ),
    )


def pod_causes(pods: list[Body]) -> list[Cause]:
    """Failures the pods show: image pulls, crash loops, config errors, unschedulable."""
    causes: list[Cause] = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        name = meta.get("name", "?")
        containers = [*(status.get("initContainerStatuses") or [])]
        for container in containers + (status.get("containerStatuses") or []):
            cause = _container_cause(name, container)
            if cause is not None:
                causes.append(cause)
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == (
                "Unschedulable"
            ):
                causes.append(
                    Cause(Reason.UNSCHEDULABLE, f"pod {name}: {condition.get('message', '')}")
                )
    return sorted(causes, key=_severity)


def _container_cause(pod: str, container: Body) -> Cause | None:
    waiting = (container.get("state") or {}).get("waiting") or {}
    reason = _WAITING_CAUSES.get(waiting.get("reason", ""))
    last = ((container.get("lastState") or {}).get("terminated") or {}).get("message") or ""
    if ENGINE_MISMATCH_MARKER in last:
        return Cause(Reason.ENGINE_MISMATCH, f"pod {pod}: {_first_line(last)}")
    if reason is None:
        return None
    for markers, named in _NAMED_CAUSES:
        if any(marker in last for marker in markers):
            where = f"pod {pod} container {container.get('name', '?')}"
            return Cause(named, f"{where}: {_first_line(last)}")
    detail = waiting.get("message") or _first_line(last)
    text = f"pod {pod} container {container.get('name', '?')}: {waiting['reason']}"
    return Cause(reason, f"{text}: {detail}" if detail else text)


def _severity(cause: Cause) -> int:
    order = [
        Reason.ENGINE_MISMATCH,
        Reason.MODEL_REFUSED,
        Reason.ACCESS_DENIED,
        Reason.IMAGE_PULL_BACK_OFF,
        Reason.CONTAINER_CONFIG_ERROR,
        Reason.CRASH_LOOP_BACK_OFF,
        Reason.UNSCHEDULABLE,
    ]
    return order.index(cause.reason) if cause.reason in order else len(order)


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception)\b.*:")


def _first_line(text: str, limit: int = 300) -> str:
    """The line that says what went wrong: the engine mismatch, else the last exception line
    of a traceback (not a frame, not a trailing hint), else the last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if any(marker in line for marker in _MARKERS):
            return line[:limit]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    return (errors[-1] if errors else lines[-1] if lines else "")[:limit]


class MigrationState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def migration_state(job: Body | None, pods: list[Body]) -> tuple[MigrationState, str]:
    """The migration Job's verdict and, when it failed, the Job's reason with the last
    failed pod's termination message."""
    name = ((job or {}).get("metadata") or {}).get("name", "")
    conditions = ((job or {}).get("status") or {}).get("conditions") or []
    for condition in conditions:
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return MigrationState.SUCCEEDED, f"migration Job {name} succeeded"
        if condition.get("type") in ("Failed", "FailureTarget"):
            detail = _failed_pod_message(name, pods)
            message = (
                f"migration Job {name} failed: {condition.get('reason', 'Failed')}: "
                f"{condition.get('message', '')}"
            )
            return MigrationState.FAILED, f"{message}; last error: {detail}" if detail else message
    return MigrationState.RUNNING, f"migration Job {name} running"


def _failed_pod_message(job: str, pods: list[Body]) -> str:
    for pod in pods:
        if ((pod.get("metadata") or {}).get("labels") or {}).get("job-name") != job:
            continue
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode", 0) != 0 and terminated.get("message"):
                return _first_line(str(terminated["message"]))
    return ""
