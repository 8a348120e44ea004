"""ConfigMap, API Service, HorizontalPodAutoscalers (or the worker's KEDA ScaledObject),
PodDisruptionBudgets, KafkaTopics."""

from __future__ import annotations

import re
from typing import Any

from ocr_operator.model import Component, OCRServingSpec, TopicDeletion
from ocr_operator.model.scaling import AutoscalingProvider, CpuAutoscaling, LagAutoscaling
from ocr_operator.render._manifest import (
    Instance,
    Kind,
    Manifest,
    component_name,
    config_map_name,
    make,
    selector_labels,
)
from ocr_operator.render.env import config_data
from ocr_operator.render.kafka_security import (
    keda_kafka_metadata,
    trigger_authentication,
    trigger_authentication_name,
)

SCALE_DOWN_STABILIZATION_SECONDS = 300
KEDA_POLLING_SECONDS = 15


def config_map(spec: OCRServingSpec, instance: Instance) -> Manifest:
    return make(
        Kind.CONFIG_MAP, config_map_name(instance), instance, config_data(spec), top_level="data"
    )


def api_url(instance: Instance) -> str:
    """In-cluster address of the API Service (port 80)."""
    return f"http://{component_name(instance, Component.API)}.{instance.namespace}.svc"


def api_service(spec: OCRServingSpec, instance: Instance) -> Manifest:
    body = {
        "type": spec.api.service_type.value,
        "selector": selector_labels(instance, Component.API),
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    }
    return make(
        Kind.SERVICE, component_name(instance, Component.API), instance, body, Component.API
    )


def autoscaler(
    spec: OCRServingSpec, instance: Instance, component: Component, cap: int | None = None
) -> Manifest | None:
    """autoscaling/v2 HPA: api on CPU, worker/writer on consumer lag per replica. `cap`: the
    advisor's back-pressure cap from status, lowering maxReplicas (never below minReplicas)."""
    scaling = _scaling(spec, component)
    if not scaling.enabled:
        return None
    name = component_name(instance, component)
    most = scaling.max_replicas
    if cap is not None:
        most = max(scaling.min_replicas, min(cap, scaling.max_replicas))
    if (
        component is Component.WORKER
        and spec.worker.autoscaling.provider is AutoscalingProvider.KEDA
    ):
        return scaled_object(spec, instance, most)
    body = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": most,
        "metrics": [_metric(spec, component)],
        "behavior": _behavior(),
    }
    return make(Kind.HORIZONTAL_POD_AUTOSCALER, name, instance, body, component)


def scaled_object(spec: OCRServingSpec, instance: Instance, most: int) -> Manifest:
    """A KEDA ScaledObject on the worker Deployment: the Kafka scaler reads the consumer
    group's lag on the jobs topic itself (no metrics adapter), and scales the workers to
    minReplicas, zero included, once the lag stays at or below activationLag for
    cooldownSeconds. KEDA creates and owns the HPA (`keda-hpa-<name>`)."""
    scaling = spec.worker.autoscaling
    topic, group = _consumed(spec, Component.WORKER)
    name = component_name(instance, Component.WORKER)
    body = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "pollingInterval": KEDA_POLLING_SECONDS,
        "cooldownPeriod": scaling.cooldown_seconds,
        "minReplicaCount": scaling.min_replicas,
        "maxReplicaCount": most,
        "advanced": {
            "horizontalPodAutoscalerConfig": {"behavior": _behavior()},
        },
        "triggers": [
            {
                "type": "kafka",
                "metadata": {
                    "bootstrapServers": spec.kafka.bootstrap_servers,
                    "consumerGroup": group,
                    "topic": topic,
                    "lagThreshold": str(scaling.lag_per_replica),
                    "activationLagThreshold": str(scaling.activation_lag),
                    # The runtime's consumers start a new group at the earliest offset: a
                    # group with no commit yet counts the whole topic as lag, so the first
                    # job wakes a stack whose workers never ran.
                    "offsetResetPolicy": "earliest",
                    # More workers than partitions would idle (the CEL rules say the same).
                    "allowIdleConsumers": "false",
                    **keda_kafka_metadata(spec),
                },
                **_authentication_ref(spec, instance),
            }
        ],
    }
    return make(Kind.SCALED_OBJECT, name, instance, body, Component.WORKER)


def _authentication_ref(spec: OCRServingSpec, instance: Instance) -> dict[str, Any]:
    if trigger_authentication(spec, instance) is None:
        return {}
    return {"authenticationRef": {"name": trigger_authentication_name(instance)}}


def _behavior() -> dict[str, Any]:
    # Each consumer-group rebalance costs seconds: scale down slowly.
    return {
        "scaleDown": {
            "stabilizationWindowSeconds": SCALE_DOWN_STABILIZATION_SECONDS,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    }


def _scaling(spec: OCRServingSpec, component: Component) -> CpuAutoscaling | LagAutoscaling:
    if component is Component.API:
        return spec.api.autoscaling
    return spec.worker.autoscaling if component is Component.WORKER else spec.writer.autoscaling


def _metric(spec: OCRServingSpec, component: Component) -> dict[str, Any]:
    if component is Component.API:
        target = spec.api.autoscaling.target_cpu_utilization_percentage
        return {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": target},
            },
        }
    lag = spec.worker.autoscaling if component is Component.WORKER else spec.writer.autoscaling
    topic, group = _consumed(spec, component)
    return {
        "type": "External",
        "external": {
            "metric": {
                "name": lag.metric_name,
                "selector": {"matchLabels": {"topic": topic, "consumergroup": group}},
            },
            "target": {"type": "AverageValue", "averageValue": str(lag.lag_per_replica)},
        },
    }


def _consumed(spec: OCRServingSpec, component: Component) -> tuple[str, str]:
    if component is Component.WRITER:
        return spec.kafka.topics.results, spec.kafka.writer_group
    return spec.kafka.topics.jobs, spec.kafka.consumer_group


def disruption_budget(
    spec: OCRServingSpec, instance: Instance, component: Component
) -> Manifest | None:
    pdb = spec.availability.pod_disruption_budget
    if not pdb.enabled:
        return None
    body = {
        "maxUnavailable": pdb.max_unavailable,
        "selector": {"matchLabels": selector_labels(instance, component)},
    }
    return make(
        Kind.POD_DISRUPTION_BUDGET, component_name(instance, component), instance, body, component
    )


def kafka_topics(spec: OCRServingSpec, instance: Instance, topics: list[str]) -> list[Manifest]:
    """Strimzi KafkaTopic resources (management Strimzi)."""
    manifests = []
    for topic in topics:
        body: dict[str, Any] = {
            "topicName": topic,
            "partitions": spec.kafka.partitions,
            "replicas": spec.kafka.replication_factor,
        }
        if spec.kafka.config:
            body["config"] = dict(spec.kafka.config)
        owned = spec.kafka.topics.deletion is TopicDeletion.DELETE
        manifest = make(
            Kind.KAFKA_TOPIC, kafka_topic_name(instance, topic), instance, body, owned=owned
        )
        manifest.body["metadata"]["labels"]["strimzi.io/cluster"] = spec.kafka.strimzi_cluster
        manifests.append(manifest)
    return manifests


def kafka_topic_name(instance: Instance, topic: str) -> str:
    """A DNS-1123 object name for a topic (topic names allow '_' and upper case)."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", topic.lower()).strip("-.")
    return f"{instance.name}-{slug}"[:253]
