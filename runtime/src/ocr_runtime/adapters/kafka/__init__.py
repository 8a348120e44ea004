"""Kafka adapters: the job publisher, the result publisher (writer mode), the dead-letter
publisher, the consumer-group record source and topic administration, all over the
process's `KafkaSecurity` (TLS, SASL)."""

from ocr_runtime.adapters.kafka.admin import delete_topics, ensure_topics, missing_topics
from ocr_runtime.adapters.kafka.consumer import ConsumerOptions, KafkaRecordSource
from ocr_runtime.adapters.kafka.producer import (
    KafkaDeadLetterPublisher,
    KafkaJobPublisher,
    KafkaProducerClient,
    KafkaResultPublisher,
    ProducerOptions,
)
from ocr_runtime.adapters.kafka.security import KafkaAccessDenied, KafkaSecurity

__all__ = [
    "ConsumerOptions",
    "KafkaAccessDenied",
    "KafkaDeadLetterPublisher",
    "KafkaJobPublisher",
    "KafkaProducerClient",
    "KafkaRecordSource",
    "KafkaResultPublisher",
    "KafkaSecurity",
    "ProducerOptions",
    "delete_topics",
    "ensure_topics",
    "missing_topics",
]
