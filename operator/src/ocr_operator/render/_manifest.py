"""Typed manifests: what render produces and the apply layer sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ocr_operator.model import Component

MANAGED_BY = "ocr-operator"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
ANNOTATION_MODE = "ocrserving.io/mode"
ANNOTATION_CONFIG_HASH = "ocrserving.io/config-hash"
ANNOTATION_MODEL_VERSION = "ocrserving.io/model-version"
APP_NAME = "ocr-serving"


class Kind(StrEnum):
    """Kinds of children the operator manages, in apply order."""

    CONFIG_MAP = "ConfigMap"
    NETWORK_POLICY = "NetworkPolicy"
    KAFKA_TOPIC = "KafkaTopic"
    # Before the Deployments: Strimzi writes the password Secret the pods reference.
    KAFKA_USER = "KafkaUser"
    JOB = "Job"
    DEPLOYMENT = "Deployment"
    SERVICE = "Service"
    HORIZONTAL_POD_AUTOSCALER = "HorizontalPodAutoscaler"
    POD_DISRUPTION_BUDGET = "PodDisruptionBudget"
    # KEDA's (spec.worker.autoscaling.provider KEDA); their CRDs may be absent from a cluster.
    # The scaler's Kafka credentials first: the ScaledObject names them.
    TRIGGER_AUTHENTICATION = "TriggerAuthentication"
    SCALED_OBJECT = "ScaledObject"
    # Read only (never rendered, never pruned): the causes of a stuck rollout.
    POD = "Pod"
    # Created once, never applied, read, listed or pruned (the generated API key; it is
    # garbage-collected with its owner).
    SECRET = "Secret"

    @property
    def prunable(self) -> bool:
        """Listed by label and deleted when no longer desired."""
        # A KafkaUser is owned (it goes with its OCRServing) but not listed: listing would
        # need a permission on kafkausers in clusters without Strimzi.
        return self not in (Kind.KAFKA_TOPIC, Kind.KAFKA_USER, Kind.POD, Kind.SECRET)

    @property
    def optional(self) -> bool:
        """Its CRD may not be installed: listing it then finds nothing to prune."""
        return self in (Kind.SCALED_OBJECT, Kind.TRIGGER_AUTHENTICATION)

    @property
    def api_version(self) -> str:
        return _API_VERSIONS[self]

    @property
    def plural(self) -> str:
        return _PLURALS[self]


_API_VERSIONS = {
    Kind.CONFIG_MAP: "v1",
    Kind.SERVICE: "v1",
    Kind.DEPLOYMENT: "apps/v1",
    Kind.HORIZONTAL_POD_AUTOSCALER: "autoscaling/v2",
    Kind.POD_DISRUPTION_BUDGET: "policy/v1",
    Kind.KAFKA_TOPIC: "kafka.strimzi.io/v1beta2",
    Kind.KAFKA_USER: "kafka.strimzi.io/v1beta2",
    Kind.JOB: "batch/v1",
    Kind.POD: "v1",
    Kind.SECRET: "v1",
    Kind.SCALED_OBJECT: "keda.sh/v1alpha1",
    Kind.TRIGGER_AUTHENTICATION: "keda.sh/v1alpha1",
    Kind.NETWORK_POLICY: "networking.k8s.io/v1",
}
_PLURALS = {
    Kind.CONFIG_MAP: "configmaps",
    Kind.SERVICE: "services",
    Kind.DEPLOYMENT: "deployments",
    Kind.HORIZONTAL_POD_AUTOSCALER: "horizontalpodautoscalers",
    Kind.POD_DISRUPTION_BUDGET: "poddisruptionbudgets",
    Kind.KAFKA_TOPIC: "kafkatopics",
    Kind.KAFKA_USER: "kafkausers",
    Kind.JOB: "jobs",
    Kind.POD: "pods",
    Kind.SECRET: "secrets",
    Kind.SCALED_OBJECT: "scaledobjects",
    Kind.TRIGGER_AUTHENTICATION: "triggerauthentications",
    Kind.NETWORK_POLICY: "networkpolicies",
}


@dataclass(frozen=True)
class Instance:
    """The OCRServing a render is for."""

    name: str
    namespace: str


@dataclass(frozen=True)
class Manifest:
    """One desired child object; `body` is the full JSON-ready manifest."""

    kind: Kind
    name: str
    body: dict[str, Any] = field(compare=False)
    component: Component | None = None
    # False: no owner reference, so the object outlives the OCRServing (retained topics).
    owned: bool = True

    @property
    def key(self) -> tuple[Kind, str]:
        return (self.kind, self.name)


def instance_labels(instance: Instance) -> dict[str, str]:
    """Labels on every child of one instance (used to list them for pruning)."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: instance.name,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def pod_labels(instance: Instance) -> dict[str, str]:
    """Labels every pod of one instance carries (api, worker, writer, migration)."""
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: instance.name}


def selector_labels(instance: Instance, component: Component) -> dict[str, str]:
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: instance.name, LABEL_COMPONENT: component.value}


def component_name(instance: Instance, component: Component) -> str:
    return f"{instance.name}-{component.value}"


def config_map_name(instance: Instance) -> str:
    return f"{instance.name}-config"


def make(
    kind: Kind,
    name: str,
    instance: Instance,
    spec: dict[str, Any],
    component: Component | None = None,
    *,
    top_level: str = "spec",
    owned: bool = True,
) -> Manifest:
    labels = instance_labels(instance)
    if component is not None:
        labels[LABEL_COMPONENT] = component.value
        labels[LABEL_PART_OF] = APP_NAME
    body: dict[str, Any] = {
        "apiVersion": kind.api_version,
        "kind": kind.value,
        "metadata": {"name": name, "namespace": instance.namespace, "labels": labels},
        top_level: spec,
    }
    return Manifest(kind=kind, name=name, body=body, component=component, owned=owned)
