"""Scaling that plays with others: the worker's KEDA ScaledObject (Kafka scaler, scale to
zero), the scale subresource's status, and no replicas re-asserted under an autoscaler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ocr_operator import FIELD_MANAGER
from ocr_operator.model import Component, OCRServingSpec
from ocr_operator.ports import Body, KubeError
from ocr_operator.reconcile import reconcile
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from tests.operator._examples import example_spec
from tests.operator._fakes import NAME, NS, FakeKube
from tests.operator._fakes import condition as _condition
from tests.operator._fakes import context as _context
from tests.operator._fakes import spec as _spec

INSTANCE = Instance(NAME, NS)
KEDA = {
    "enabled": True,
    "provider": "KEDA",
    "minReplicas": 0,
    "maxReplicas": 4,
    "lagPerReplica": 25,
    "activationLag": 2,
    "cooldownSeconds": 120,
}


def _by_key(spec: OCRServingSpec, caps: Mapping[Component, int] | None = None) -> dict[Any, Any]:
    plan = plan_transition(spec.architecture.mode, Observed())
    return {m.key: m.body for m in render(spec, INSTANCE, plan, caps=caps)}


def _model(**extra: Any) -> OCRServingSpec:
    return OCRServingSpec.model_validate(_spec("Standard", **extra))


def test_keda_renders_a_scaled_object_with_the_kafka_scaler_instead_of_an_hpa() -> None:
    spec = _model(worker={"autoscaling": KEDA})
    manifests = _by_key(spec)
    assert (Kind.HORIZONTAL_POD_AUTOSCALER, f"{NAME}-worker") not in manifests
    scaled = manifests[(Kind.SCALED_OBJECT, f"{NAME}-worker")]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    body = scaled["spec"]
    assert body["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{NAME}-worker",
    }
    assert (body["minReplicaCount"], body["maxReplicaCount"]) == (0, 4)
    assert body["cooldownPeriod"] == 120
    (trigger,) = body["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"] == {
        "bootstrapServers": "k:9092",
        "consumerGroup": "ocr-workers",
        "topic": "ocr-jobs",
        "lagThreshold": "25",
        "activationLagThreshold": "2",
        "offsetResetPolicy": "earliest",
        "allowIdleConsumers": "false",
    }
    # KEDA's scaler metadata is a map of strings.
    assert all(isinstance(v, str) for v in trigger["metadata"].values())
    scale_down = body["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] == 300
    # KEDA owns the replicas: the operator leaves them out of the Deployment.
    assert "replicas" not in manifests[(Kind.DEPLOYMENT, f"{NAME}-worker")]["spec"]


def test_the_advisor_cap_lowers_the_scaled_objects_maximum() -> None:
    spec = _model(worker={"autoscaling": KEDA})
    body = _by_key(spec, {Component.WORKER: 2})[(Kind.SCALED_OBJECT, f"{NAME}-worker")]["spec"]
    assert body["maxReplicaCount"] == 2


def test_the_scale_to_zero_example_reads_the_lag_of_its_own_topic_and_group() -> None:
    spec = example_spec("scale-to-zero")
    body = _by_key(spec)[(Kind.SCALED_OBJECT, f"{NAME}-worker")]["spec"]
    assert (body["minReplicaCount"], body["maxReplicaCount"]) == (0, 2)
    (trigger,) = body["triggers"]
    # Another stack's jobs on a shared topic or group would keep these workers awake.
    assert trigger["metadata"]["topic"] == "scale-to-zero-jobs"
    assert trigger["metadata"]["consumerGroup"] == "scale-to-zero-workers"
    assert trigger["metadata"]["activationLagThreshold"] == "0"


def test_hpa_stays_the_default_provider() -> None:
    spec = _model(worker={"autoscaling": {"enabled": True}})
    manifests = _by_key(spec)
    assert (Kind.HORIZONTAL_POD_AUTOSCALER, f"{NAME}-worker") in manifests
    assert not any(kind is Kind.SCALED_OBJECT for kind, _ in manifests)
    assert "replicas" not in manifests[(Kind.DEPLOYMENT, f"{NAME}-worker")]["spec"]


def test_without_an_autoscaler_the_spec_replicas_are_applied() -> None:
    spec = _model(worker={"replicas": 3})
    assert _by_key(spec)[(Kind.DEPLOYMENT, f"{NAME}-worker")]["spec"]["replicas"] == 3


async def _settle(kube: FakeKube) -> None:
    await reconcile(_context(kube), NS, NAME)
    await reconcile(_context(kube), NS, NAME)


async def test_status_carries_the_scale_subresource_fields() -> None:
    kube = FakeKube(_spec("Standard", worker={"replicas": 2}))
    await _settle(kube)
    status = kube.resource["status"]
    assert status["workerReplicas"] == 2
    assert status["workerSelector"] == (
        "app.kubernetes.io/component=worker,app.kubernetes.io/instance=demo,"
        "app.kubernetes.io/name=ocr-serving"
    )


async def test_scaled_to_zero_by_keda_is_ready_and_never_scaled_back_up() -> None:
    kube = FakeKube(_spec("Standard", worker={"autoscaling": KEDA}))
    await _settle(kube)
    assert (Kind.SCALED_OBJECT, f"{NAME}-worker") in kube.objects
    worker = kube.objects[(Kind.DEPLOYMENT, f"{NAME}-worker")]
    # KEDA scales the idle workers to zero through the Deployment's scale.
    worker["spec"]["replicas"] = 0
    worker["status"] = {"observedGeneration": 1, "replicas": 0}
    await reconcile(_context(kube), NS, NAME)
    await reconcile(_context(kube), NS, NAME)
    assert kube.objects[(Kind.DEPLOYMENT, f"{NAME}-worker")]["spec"]["replicas"] == 0
    assert _condition(kube, "Ready")["status"] == "True"
    assert kube.resource["status"]["workerReplicas"] == 0


async def test_switching_provider_prunes_the_other_autoscaler() -> None:
    kube = FakeKube(_spec("Standard", worker={"autoscaling": {"enabled": True}}))
    await _settle(kube)
    assert (Kind.HORIZONTAL_POD_AUTOSCALER, f"{NAME}-worker") in kube.objects
    kube.resource["spec"] = _spec("Standard", worker={"autoscaling": KEDA})
    await reconcile(_context(kube), NS, NAME)
    assert (Kind.HORIZONTAL_POD_AUTOSCALER, f"{NAME}-worker") in kube.deleted
    assert (Kind.SCALED_OBJECT, f"{NAME}-worker") in kube.objects


class _NoKeda(FakeKube):
    """A cluster without KEDA: the keda.sh resources do not exist."""

    async def list(self, kind: Kind, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        if kind is Kind.SCALED_OBJECT:
            raise KubeError(404, "the server could not find the requested resource")
        return await super().list(kind, namespace, labels)

    async def apply(self, manifest: Any, owner: Any, field_manager: str = FIELD_MANAGER) -> Body:
        if manifest.kind is Kind.SCALED_OBJECT:
            raise KubeError(404, "the server could not find the requested resource")
        return await super().apply(manifest, owner, field_manager)


async def test_without_keda_installed_hpa_stacks_are_unaffected() -> None:
    kube = _NoKeda(_spec("Standard", worker={"autoscaling": {"enabled": True}}))
    await _settle(kube)
    assert _condition(kube, "Ready")["status"] == "True"


async def test_asking_for_keda_where_it_is_missing_says_so() -> None:
    kube = _NoKeda(_spec("Standard", worker={"autoscaling": KEDA}))
    await _settle(kube)
    degraded = _condition(kube, "Degraded")
    assert degraded["reason"] == "ApplyFailed"
    assert "KEDA is not installed" in degraded["message"]


async def test_switching_an_autoscaler_on_hands_the_replicas_over_first() -> None:
    """The operator applied replicas so far; it keeps the live count through a handoff field
    manager before leaving them out, so they do not fall back to 1."""
    kube = FakeKube(_spec("Standard", worker={"replicas": 3}))
    await _settle(kube)
    worker = (Kind.DEPLOYMENT, f"{NAME}-worker")
    kube.objects[worker]["metadata"]["managedFields"] = [
        {
            "manager": "ocr-operator",
            "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    ]
    kube.objects[worker]["metadata"]["namespace"] = NS
    kube.resource["spec"] = _spec("Standard", worker={"autoscaling": KEDA})
    await reconcile(_context(kube), NS, NAME)
    assert kube.handoffs == [(worker, {"replicas": 3})]
    # Once the scaler holds them (no Apply entry of the operator with replicas): no handoff.
    kube.objects[worker]["metadata"]["managedFields"] = [
        {"manager": "ocr-operator", "operation": "Apply", "fieldsV1": {"f:spec": {}}}
    ]
    await reconcile(_context(kube), NS, NAME)
    assert len(kube.handoffs) == 1
