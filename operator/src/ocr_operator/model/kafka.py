"""`spec.kafka`: the stack's Kafka connection, topic names and how topics are managed."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from ocr_operator.model._base import ObjectName, WireModel, cel
from ocr_operator.model.enums import TopicDeletion, TopicManagement
from ocr_operator.model.kafka_security import KAFKA_SECURITY_RULE, KafkaSecuritySpec

TopicName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9._-]+$", max_length=249)]
GroupName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9._-]+$", max_length=249)]


class TopicNames(
    WireModel,
    json_schema_extra=cel(
        (
            "self.jobs != self.results && self.jobs != self.deadLetter"
            " && self.results != self.deadLetter",
            "topics.jobs, topics.results and topics.deadLetter must be three different topics",
        )
    ),
):
    """Names of the Kafka topics of the stack."""

    jobs: TopicName = Field("ocr-jobs", description="Topic the API publishes jobs to.")
    results: TopicName = Field("ocr-results", description="Topic of results (Writer mode).")
    dead_letter: TopicName = Field("ocr-jobs-dlq", description="Topic of poison jobs.")
    deletion: TopicDeletion = Field(
        TopicDeletion.RETAIN,
        description="Retain: KafkaTopic resources (management Strimzi) carry no owner "
        "reference and outlive the OCRServing (their data may hold unprocessed work); "
        "Delete: they are garbage-collected with it.",
    )


class KafkaSpec(
    WireModel,
    json_schema_extra=cel(
        (
            "self.management != 'Strimzi' || has(self.strimziCluster)",
            "kafka.strimziCluster is required when kafka.management is Strimzi",
        ),
        (
            "self.consumerGroup != self.writerGroup",
            "kafka.consumerGroup and kafka.writerGroup must differ",
        ),
        KAFKA_SECURITY_RULE,
    ),
):
    """Kafka connection, topics and how topics are managed."""

    bootstrap_servers: Annotated[
        str,
        StringConstraints(
            pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]+(,[A-Za-z0-9.\-\[\]:]+:[0-9]+)*$", max_length=1024
        ),
    ] = Field(description="Comma-separated host:port list.")
    topics: TopicNames = Field(default_factory=TopicNames, description="Topic names.")
    consumer_group: GroupName = Field("ocr-workers", description="Consumer group of workers.")
    writer_group: GroupName = Field("ocr-writers", description="Consumer group of writers.")
    partitions: int = Field(
        6,
        ge=1,
        le=10_000,
        description="Partitions of each topic; can grow, "
        "never shrink (a decrease is reported as NotSupported).",
    )
    replication_factor: int = Field(
        1, ge=1, le=10, description="Replicas of each partition (applied at creation)."
    )
    config: dict[str, Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=dict,
        description="Topic configuration (e.g. retention.ms), applied at "
        "creation (Operator) or on the KafkaTopic (Strimzi).",
    )
    management: TopicManagement = Field(
        TopicManagement.OPERATOR,
        description="Operator: the operator creates topics and grows "
        "partitions through the Kafka admin API; Strimzi: KafkaTopic resources are rendered; "
        "External: topics are managed elsewhere.",
    )
    strimzi_cluster: ObjectName | None = Field(
        None, description="Strimzi Kafka cluster name (label strimzi.io/cluster); Strimzi only."
    )
    security: KafkaSecuritySpec | None = Field(
        None, description="TLS and SASL of the stack's Kafka clients; unset: PLAINTEXT."
    )
