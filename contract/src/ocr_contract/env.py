"""Names of the OCR_* settings the operator renders into the runtime's containers.

The runtime's Settings reads OCR_<FIELD>; it checks at import that every name here is one of
its fields, and the operator renders no other name.
"""

from __future__ import annotations

from enum import StrEnum

ENV_PREFIX = "OCR_"


class Env(StrEnum):
    HTTP_HOST = "OCR_HTTP_HOST"
    HTTP_PORT = "OCR_HTTP_PORT"
    LOG_LEVEL = "OCR_LOG_LEVEL"
    MODE = "OCR_MODE"
    DATABASE_URL = "OCR_DATABASE_URL"
    REDIS_URL = "OCR_REDIS_URL"
    API_KEY_HASHES = "OCR_API_KEY_HASHES"
    KAFKA_BOOTSTRAP = "OCR_KAFKA_BOOTSTRAP"
    KAFKA_CREATE_TOPICS = "OCR_KAFKA_CREATE_TOPICS"
    KAFKA_PARTITIONS = "OCR_KAFKA_PARTITIONS"
    KAFKA_REPLICATION = "OCR_KAFKA_REPLICATION"
    KAFKA_SECURITY_PROTOCOL = "OCR_KAFKA_SECURITY_PROTOCOL"
    KAFKA_SASL_MECHANISM = "OCR_KAFKA_SASL_MECHANISM"
    KAFKA_SASL_USERNAME = "OCR_KAFKA_SASL_USERNAME"
    KAFKA_SASL_PASSWORD = "OCR_KAFKA_SASL_PASSWORD"
    KAFKA_SSL_CA_FILE = "OCR_KAFKA_SSL_CA_FILE"
    KAFKA_SSL_CERT_FILE = "OCR_KAFKA_SSL_CERT_FILE"
    KAFKA_SSL_KEY_FILE = "OCR_KAFKA_SSL_KEY_FILE"
    JOBS_TOPIC = "OCR_JOBS_TOPIC"
    RESULTS_TOPIC = "OCR_RESULTS_TOPIC"
    DEAD_LETTER_TOPIC = "OCR_DEAD_LETTER_TOPIC"
    CONSUMER_GROUP = "OCR_CONSUMER_GROUP"
    WRITER_GROUP = "OCR_WRITER_GROUP"
    ENGINE = "OCR_ENGINE"
    DEVICE = "OCR_DEVICE"
    ENGINE_THREADS = "OCR_ENGINE_THREADS"
    MODEL_VERSION = "OCR_MODEL_VERSION"
    MODEL_DIR = "OCR_MODEL_DIR"
    MODEL_S3_ENDPOINT = "OCR_MODEL_S3_ENDPOINT"
    MODEL_S3_REGION = "OCR_MODEL_S3_REGION"
    MODEL_S3_ACCESS_KEY_ID = "OCR_MODEL_S3_ACCESS_KEY_ID"
    MODEL_S3_SECRET_ACCESS_KEY = "OCR_MODEL_S3_SECRET_ACCESS_KEY"
    BATCH_MAX_SIZE = "OCR_BATCH_MAX_SIZE"
    BATCH_MAX_WAIT_MS = "OCR_BATCH_MAX_WAIT_MS"
    BATCH_MAX_PIXELS = "OCR_BATCH_MAX_PIXELS"
    BATCH_LATENCY_TARGET_MS = "OCR_BATCH_LATENCY_TARGET_MS"
    DRAIN_SECONDS = "OCR_DRAIN_SECONDS"
    MAX_UPLOAD_BYTES = "OCR_MAX_UPLOAD_BYTES"
    MAX_PIXELS = "OCR_MAX_PIXELS"
    RATE_LIMIT_PER_MINUTE = "OCR_RATE_LIMIT_PER_MINUTE"

    @property
    def field(self) -> str:
        """The name of the runtime Settings field this variable sets."""
        return self.value.removeprefix(ENV_PREFIX).lower()


def unknown_settings(fields: set[str] | frozenset[str]) -> list[Env]:
    """The names of this contract that are not among `fields` (a Settings' field names)."""
    return [name for name in Env if name.field not in fields]
