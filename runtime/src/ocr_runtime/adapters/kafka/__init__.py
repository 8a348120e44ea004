"""Kafka adapters: the job publisher, the result publisher (writer mode), the dead-letter
publisher, the consumer-group record source and topic administration."""

from ocr_runtime.adapters.kafka.admin import delete_topics, ensure_topics, missing_topics
from ocr_runtime.adapters.kafka.consumer import ConsumerOptions, KafkaRecordSource
from ocr_runtime.adapters.kafka.producer import (
    KafkaDeadLetterPublisher,
    KafkaJobPublisher,
    KafkaProducerClient,
    KafkaResultPublisher,
    ProducerOptions,
)

__all__ = [
    "ConsumerOptions",
    "KafkaDeadLetterPublisher",
    "KafkaJobPublisher",
    "KafkaProducerClient",
    "KafkaRecordSource",
    "KafkaResultPublisher",
    "ProducerOptions",
    "delete_topics",
    "ensure_topics",
    "missing_topics",
]
