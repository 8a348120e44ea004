"""The topics step of reconcile, per management: Operator (admin API), Strimzi, External."""

from __future__ import annotations

from dataclasses import dataclass

from ocr_operator.apply import KubeClient, KubeError, Owner
from ocr_operator.kafka_topics import KafkaUnavailableError, TopicRequest, ensure_topics
from ocr_operator.model import OCRServingSpec, Reason, TopicManagement
from ocr_operator.render import Instance, Kind, Plan, render, topic_names
from ocr_operator.settings import OperatorSettings


@dataclass(frozen=True)
class TopicsFailure:
    reason: Reason
    message: str


@dataclass(frozen=True)
class TopicsOutcome:
    reason: Reason
    message: str
    not_supported: str | None = None  # partition decreases refused
    failure: TopicsFailure | None = None  # topics could not be ensured: stop this pass


async def ensure_topics_step(
    kube: KubeClient,
    *,
    settings: OperatorSettings,
    spec: OCRServingSpec,
    instance: Instance,
    plan: Plan,
    owner: Owner,
) -> TopicsOutcome:
    names = topic_names(spec, plan)
    management = spec.kafka.management
    if management is TopicManagement.EXTERNAL:
        return TopicsOutcome(Reason.TOPICS_EXTERNAL, "topics are managed outside the operator")
    if management is TopicManagement.STRIMZI:
        return await _strimzi(kube, spec, instance, plan, owner)
    bootstrap = settings.kafka_bootstrap or spec.kafka.bootstrap_servers
    requests = [
        TopicRequest(
            n, spec.kafka.partitions, spec.kafka.replication_factor, dict(spec.kafka.config)
        )
        for n in names
    ]
    try:
        report = await ensure_topics(bootstrap, requests)
    except KafkaUnavailableError as error:
        return TopicsOutcome(
            Reason.KAFKA_UNAVAILABLE,
            str(error),
            failure=TopicsFailure(Reason.KAFKA_UNAVAILABLE, f"Kafka at {bootstrap}: {error}"),
        )
    refused = "; ".join(r.describe() for r in report.not_supported) or None
    if refused:
        return TopicsOutcome(Reason.NOT_SUPPORTED, refused, not_supported=refused)
    return TopicsOutcome(Reason.TOPICS_READY, "topics exist: " + ", ".join(names))


async def _strimzi(
    kube: KubeClient, spec: OCRServingSpec, instance: Instance, plan: Plan, owner: Owner
) -> TopicsOutcome:
    for manifest in render(spec, instance, plan):
        if manifest.kind is not Kind.KAFKA_TOPIC:
            continue
        try:
            await kube.apply(manifest, owner)
        except KubeError as error:
            message = f"KafkaTopic {manifest.name}: {error.message}"
            if error.status == 404:
                message = "the KafkaTopic resource (Strimzi) is not installed in the cluster"
            return TopicsOutcome(
                Reason.STRIMZI_UNAVAILABLE,
                message,
                failure=TopicsFailure(Reason.STRIMZI_UNAVAILABLE, message),
            )
    return TopicsOutcome(Reason.TOPICS_READY, "KafkaTopic resources applied")
