"""The topics step of reconcile, per management: Operator (admin API), Strimzi, External."""

from __future__ import annotations

from dataclasses import dataclass

from ocr_operator.kafka_topics import KafkaUnavailableError
from ocr_operator.model import OCRServingSpec, Reason, TopicManagement
from ocr_operator.ports import Body, KubeApi, KubeError, Owner, TopicAdmin, TopicRequest
from ocr_operator.render import Instance, Plan, topic_names
from ocr_operator.render.extras import kafka_topics


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
    ready: bool = True  # False while a KafkaTopic is not Ready yet (the stack waits)


async def ensure_topics_step(
    kube: KubeApi,
    admin: TopicAdmin,
    *,
    bootstrap: str,
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
    kafka = spec.kafka
    requests = [
        TopicRequest(n, kafka.partitions, kafka.replication_factor, dict(kafka.config))
        for n in names
    ]
    try:
        report = await admin.ensure(bootstrap, requests)
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
    kube: KubeApi, spec: OCRServingSpec, instance: Instance, plan: Plan, owner: Owner
) -> TopicsOutcome:
    waiting: list[str] = []
    for manifest in kafka_topics(spec, instance, topic_names(spec, plan)):
        try:
            applied = await kube.apply(manifest, owner)
        except KubeError as error:
            message = f"KafkaTopic {manifest.name}: {error.message}"
            if error.status == 404:
                message = "the KafkaTopic resource (Strimzi) is not installed in the cluster"
            return TopicsOutcome(
                Reason.STRIMZI_UNAVAILABLE,
                message,
                failure=TopicsFailure(Reason.STRIMZI_UNAVAILABLE, message),
            )
        state = strimzi_topic_state(applied)
        if state is not None:
            waiting.append(f"{manifest.name}: {state}")
    if waiting:
        return TopicsOutcome(
            Reason.WAITING_FOR_TOPICS, "KafkaTopic not Ready: " + "; ".join(waiting), ready=False
        )
    return TopicsOutcome(Reason.TOPICS_READY, "KafkaTopic resources Ready")


def strimzi_topic_state(topic: Body) -> str | None:
    """None when Strimzi's topic operator reports the KafkaTopic Ready for its current
    generation; otherwise what it says (or that it has not looked at it yet)."""
    status = topic.get("status") or {}
    generation = (topic.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration", 0) < generation:
        return "not reconciled by the topic operator yet"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return None
            return f"{condition.get('reason', 'NotReady')}: {condition.get('message', '')}"
    return "no Ready condition yet"
