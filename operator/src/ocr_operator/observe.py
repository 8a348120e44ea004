"""Observation of the live stack for the transition plan (Deployments, pods, results lag)."""

from __future__ import annotations

from ocr_operator.kafka_topics import KafkaUnavailableError
from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.ports import Body, KubeApi, TopicAdmin
from ocr_operator.render import LABEL_COMPONENT, Instance, Kind, Observed, component_name
from ocr_operator.render._manifest import ANNOTATION_MODE


async def observe(
    kube: KubeApi,
    admin: TopicAdmin,
    *,
    bootstrap: str,
    spec: OCRServingSpec,
    instance: Instance,
    target: Mode,
    pods: list[Body],
) -> Observed:
    """What plan_transition needs: the live worker/writer Deployments, whether any worker
    pod of the Writer template still exists (terminating ones included: they may still
    publish results until they are gone) and, only once none does and the writer is on its
    way out, the writer group's lag on the results topic, read after that check."""
    worker = await kube.get(
        Kind.DEPLOYMENT, instance.namespace, component_name(instance, Component.WORKER)
    )
    writer = await kube.get(
        Kind.DEPLOYMENT, instance.namespace, component_name(instance, Component.WRITER)
    )
    worker_mode = _deployment_mode(worker)
    settled = worker is None or _rolled_out(worker)
    if target is not Mode.WRITER:
        settled = settled and not publishing_workers(pods)
    lag: int | None = None
    if (
        target is not Mode.WRITER
        and writer is not None
        and worker_mode is not Mode.WRITER
        and settled
    ):
        try:
            lag = await admin.lag(bootstrap, spec.kafka.writer_group, spec.kafka.topics.results)
        except KafkaUnavailableError:
            lag = None  # unknown lag: the writer stays until the drain can be confirmed
    return Observed(
        worker_mode=worker_mode,
        writer_exists=writer is not None,
        writer_ready=writer is not None and _ready(writer),
        workers_settled=settled,
        results_lag=lag,
    )


def publishing_workers(pods: list[Body]) -> list[str]:
    """Names of worker pods of a Writer-mode template that still exist, whatever their
    phase short of finished (a terminating pod drains its batch and publishes it)."""
    names = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(LABEL_COMPONENT) != Component.WORKER.value:
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if (meta.get("annotations") or {}).get(ANNOTATION_MODE) == Mode.WRITER.value:
            names.append(str(meta.get("name", "")))
    return names


def _deployment_mode(deployment: Body | None) -> Mode | None:
    if deployment is None:
        return None
    value = (deployment["metadata"].get("annotations") or {}).get(ANNOTATION_MODE, "")
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
