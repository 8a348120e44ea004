"""Observation of the live stack for the transition plan (Deployments, pods, drain lag)."""

from __future__ import annotations

from collections.abc import Mapping

from ocr_contract import component_run, components, optional_components
from ocr_operator.health import Rollout, rollout
from ocr_operator.kafka_topics import KafkaUnavailableError
from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.model.scaling import CpuAutoscaling, LagAutoscaling
from ocr_operator.ports import Body, TopicAdmin
from ocr_operator.render import (
    LABEL_COMPONENT,
    Instance,
    Observed,
    Plan,
    component_name,
    setting,
    topic_name,
)
from ocr_operator.render._manifest import ANNOTATION_MODE


async def observe(
    admin: TopicAdmin,
    *,
    bootstrap: str,
    spec: OCRServingSpec,
    instance: Instance,
    target: Mode,
    deployments: Mapping[str, Body],
    pods: list[Body],
) -> Observed:
    """What plan_transition needs, from the stack's live Deployments (by name) and pods: the
    worker Deployment and those of the components only some modes run, whether any worker
    pod of a template that feeds a component the target does not run still exists
    (terminating ones included: they may still publish until they are gone) and, only once
    none does and such a component is on its way out, its group's lag on its input topic,
    read after that check."""
    worker = deployments.get(component_name(instance, Component.WORKER))
    optional = {
        c: deployments.get(component_name(instance, c)) for c in sorted(optional_components())
    }
    present = frozenset(c for c, d in optional.items() if d is not None)
    worker_mode = _deployment_mode(worker)
    want = components(target)
    settled = (worker is None or _rolled_out(worker)) and not feeding_workers(pods, target)
    leaving = present - want
    fed = components(worker_mode) - want if worker_mode is not None else frozenset()
    lag: int | None = None
    if leaving and not fed and settled:
        try:
            lag = 0
            for component in sorted(leaving):
                lag += await admin.lag(bootstrap, *_input(spec, component, target))
        except KafkaUnavailableError:
            lag = None  # unknown lag: the component stays until the drain can be confirmed
    return Observed(
        worker_mode=worker_mode,
        present=present,
        ready=frozenset(c for c, d in optional.items() if d is not None and _ready(d)),
        workers_settled=settled,
        drain_lag=lag,
    )


def _input(spec: OCRServingSpec, component: Component, target: Mode) -> tuple[str, str]:
    """(consumer group, input topic) of a component that consumes one."""
    _home, run = component_run(component, target)
    if run.consumes is None or run.group is None:
        raise ValueError(f"{component.value} consumes no topic")
    return setting(spec, run.group), topic_name(spec, run.consumes)


def feeding_workers(pods: list[Body], target: Mode) -> list[str]:
    """Names of worker pods, whatever their phase short of finished (a terminating pod
    drains its batch and publishes it), of a template whose mode runs a component that
    `target` does not: they may still publish to that component's input topic."""
    names = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(LABEL_COMPONENT) != Component.WORKER.value:
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        mode = _mode((meta.get("annotations") or {}).get(ANNOTATION_MODE, ""))
        if mode is not None and components(mode) - components(target):
            names.append(str(meta.get("name", "")))
    return names


def _deployment_mode(deployment: Body | None) -> Mode | None:
    if deployment is None:
        return None
    return _mode((deployment["metadata"].get("annotations") or {}).get(ANNOTATION_MODE, ""))


def _mode(value: object) -> Mode | None:
    try:
        return Mode(str(value))
    except ValueError:
        return None


def _rolled_out(deployment: Body) -> bool:
    """Every pod runs the latest template (no pod of an older mode is left)."""
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
    )


def _ready(deployment: Body) -> bool:
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    ready = int((deployment.get("status") or {}).get("readyReplicas", 0))
    return _rolled_out(deployment) and ready >= int(wanted)


def component_rollouts(
    spec: OCRServingSpec, instance: Instance, plan: Plan, live: dict[str, Body]
) -> dict[Component, Rollout]:
    """Each planned component's rollout, from its live Deployment (absent: none yet)."""
    out: dict[Component, Rollout] = {}
    for component in [c for c in Component if c in plan.components]:
        name = component_name(instance, component)
        deployment = live.get(name) or {"metadata": {"name": name}, "spec": {"replicas": 1}}
        out[component] = rollout(component.value, deployment, _floor(spec, component))
    return out


def _floor(spec: OCRServingSpec, component: Component) -> int | None:
    """With an autoscaler, its minReplicas available is enough for Ready."""
    scaling: CpuAutoscaling | LagAutoscaling = spec.api.autoscaling
    if component is Component.WORKER:
        scaling = spec.worker.autoscaling
    elif component is Component.WRITER:
        scaling = spec.writer.autoscaling
    return scaling.min_replicas if scaling.enabled else None


def deployments_after_pass(
    listed: dict[str, Body], changed: dict[str, Body | None]
) -> dict[str, Body]:
    """The stack's Deployments after a pass, without listing them again: those it deleted
    gone, those whose spec it changed (a new generation) as the apply returned them. The
    others stay as listed before the pods were (an apply that changed nothing returns the
    object as it is now, maybe rolled out past what those pods show)."""
    after = dict(listed)
    for name, body in changed.items():
        before = listed.get(name)
        if body is None:
            after.pop(name, None)
        elif before is None or _generation(body) != _generation(before):
            after[name] = body
    return after


def _generation(body: Body) -> object:
    return body["metadata"].get("generation")
