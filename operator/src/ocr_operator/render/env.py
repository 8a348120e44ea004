"""Environment of the runtime containers: the contract with ocr_runtime's Settings (OCR_*)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from ocr_operator.model import Mode, OCRServingSpec
from ocr_operator.model.api import GENERATED_HASHES
from ocr_operator.model.enums import AuthMode

PRESTOP_SECONDS = 5
GRACE_MARGIN_SECONDS = 5


def config_data(spec: OCRServingSpec) -> dict[str, str]:
    """Non-secret settings shared by every component (the ConfigMap)."""
    kafka, engine, batching = spec.kafka, spec.engine, spec.batching
    return {
        "OCR_HTTP_HOST": "0.0.0.0",
        "OCR_HTTP_PORT": str(spec.http_port),
        "OCR_LOG_LEVEL": spec.log_level,
        "OCR_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        # The operator (or Strimzi, or whoever manages them) owns the topics: a runtime
        # process waits for a missing topic instead of creating it with its own defaults.
        "OCR_KAFKA_CREATE_TOPICS": "false",
        "OCR_KAFKA_PARTITIONS": str(kafka.partitions),
        "OCR_KAFKA_REPLICATION": str(kafka.replication_factor),
        "OCR_JOBS_TOPIC": kafka.topics.jobs,
        "OCR_RESULTS_TOPIC": kafka.topics.results,
        "OCR_DEAD_LETTER_TOPIC": kafka.topics.dead_letter,
        "OCR_CONSUMER_GROUP": kafka.consumer_group,
        "OCR_WRITER_GROUP": kafka.writer_group,
        "OCR_ENGINE": engine.kind.value,
        "OCR_DEVICE": engine.device.value,
        "OCR_ENGINE_THREADS": str(engine.threads),
        "OCR_MODEL_VERSION": engine.model_version,
        "OCR_BATCH_MAX_SIZE": str(batching.max_size),
        "OCR_BATCH_MAX_WAIT_MS": str(batching.max_wait_ms),
        "OCR_BATCH_MAX_PIXELS": str(batching.max_pixels),
        "OCR_BATCH_LATENCY_TARGET_MS": str(batching.latency_target_ms),
        "OCR_DRAIN_SECONDS": str(spec.drain_seconds),
        # The worker checks the pixel limit too (pages of documents it rasterises).
        "OCR_MAX_UPLOAD_BYTES": str(spec.api.limits.max_upload_bytes),
        "OCR_MAX_PIXELS": str(spec.api.limits.max_pixels),
        "OCR_RATE_LIMIT_PER_MINUTE": str(spec.api.limits.rate_limit_per_minute),
    }


def config_hash(data: dict[str, str]) -> str:
    """Pod-template annotation so that a ConfigMap change rolls the pods."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def container_env(spec: OCRServingSpec, mode: Mode) -> list[dict[str, Any]]:
    """Per-container variables: the mode and the Secret-backed URLs."""
    env: list[dict[str, Any]] = [
        {"name": "OCR_MODE", "value": mode.runtime_value},
        database_env(spec),
    ]
    if spec.redis is not None:
        env.append(
            _secret_env(
                "OCR_REDIS_URL", spec.redis.url_secret_ref.name, spec.redis.url_secret_ref.key
            )
        )
    return env


def api_key_ref(spec: OCRServingSpec, instance_name: str) -> tuple[str, str] | None:
    """(Secret, key) of the API key digests; None when auth is off."""
    auth = spec.api.auth
    if auth.mode is AuthMode.NONE:
        return None
    if auth.api_key_secret_ref is not None:
        return auth.api_key_secret_ref.name, auth.api_key_secret_ref.key
    return generated_api_key_secret(instance_name), GENERATED_HASHES


def generated_api_key_secret(instance_name: str) -> str:
    """The Secret the operator creates when auth names none."""
    return f"{instance_name}-api-key"


def api_auth_env(spec: OCRServingSpec, instance_name: str) -> list[dict[str, Any]]:
    """OCR_API_KEY_HASHES of the API container, from the Secret (never in plain text)."""
    ref = api_key_ref(spec, instance_name)
    return [] if ref is None else [_secret_env("OCR_API_KEY_HASHES", *ref)]


def database_env(spec: OCRServingSpec) -> dict[str, Any]:
    ref = spec.database.url_secret_ref
    return _secret_env("OCR_DATABASE_URL", ref.name, ref.key)


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def termination_grace_seconds(spec: OCRServingSpec) -> int:
    """Long enough for preStop, one batch to fill and the runtime's drain."""
    batch_wait = math.ceil(spec.batching.max_wait_ms / 1000)
    return PRESTOP_SECONDS + batch_wait + spec.drain_seconds + GRACE_MARGIN_SECONDS
