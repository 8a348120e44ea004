"""Environment of the runtime containers: the OCR_* settings of ocr_runtime's Settings, by
the names the contract declares."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from ocr_contract import Env, RuntimeMode
from ocr_operator.model import OCRServingSpec
from ocr_operator.model.api import GENERATED_HASHES
from ocr_operator.model.enums import AuthMode

PRESTOP_SECONDS = 5
GRACE_MARGIN_SECONDS = 5


def config_data(spec: OCRServingSpec) -> dict[str, str]:
    """Non-secret settings shared by every component (the ConfigMap)."""
    kafka, engine, batching = spec.kafka, spec.engine, spec.batching
    return {
        Env.HTTP_HOST.value: "0.0.0.0",
        Env.HTTP_PORT.value: str(spec.http_port),
        Env.LOG_LEVEL.value: spec.log_level,
        Env.KAFKA_BOOTSTRAP.value: kafka.bootstrap_servers,
        # The operator (or Strimzi, or whoever manages them) owns the topics: a runtime
        # process waits for a missing topic instead of creating it with its own defaults.
        Env.KAFKA_CREATE_TOPICS.value: "false",
        Env.KAFKA_PARTITIONS.value: str(kafka.partitions),
        Env.KAFKA_REPLICATION.value: str(kafka.replication_factor),
        Env.JOBS_TOPIC.value: kafka.topics.jobs,
        Env.RESULTS_TOPIC.value: kafka.topics.results,
        Env.DEAD_LETTER_TOPIC.value: kafka.topics.dead_letter,
        Env.CONSUMER_GROUP.value: kafka.consumer_group,
        Env.WRITER_GROUP.value: kafka.writer_group,
        Env.ENGINE.value: engine.kind.value,
        Env.DEVICE.value: engine.device.value,
        Env.ENGINE_THREADS.value: str(engine.threads),
        Env.MODEL_VERSION.value: engine.model_version,
        Env.BATCH_MAX_SIZE.value: str(batching.max_size),
        Env.BATCH_MAX_WAIT_MS.value: str(batching.max_wait_ms),
        Env.BATCH_MAX_PIXELS.value: str(batching.max_pixels),
        Env.BATCH_LATENCY_TARGET_MS.value: str(batching.latency_target_ms),
        Env.DRAIN_SECONDS.value: str(spec.drain_seconds),
        # The worker checks the pixel limit too (pages of documents it rasterises).
        Env.MAX_UPLOAD_BYTES.value: str(spec.api.limits.max_upload_bytes),
        Env.MAX_PIXELS.value: str(spec.api.limits.max_pixels),
        Env.RATE_LIMIT_PER_MINUTE.value: str(spec.api.limits.rate_limit_per_minute),
    }


def config_hash(data: dict[str, str]) -> str:
    """Pod-template annotation so that a ConfigMap change rolls the pods."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def container_env(spec: OCRServingSpec, mode: RuntimeMode | None) -> list[dict[str, Any]]:
    """Per-container variables: the mode (for a component that reads it: another value in
    a component that ignores it would only roll its pods) and the Secret-backed URLs."""
    env: list[dict[str, Any]] = []
    if mode is not None:
        env.append({"name": Env.MODE.value, "value": mode.value})
    env.append(database_env(spec))
    if spec.redis is not None:
        env.append(
            _secret_env(
                Env.REDIS_URL.value, spec.redis.url_secret_ref.name, spec.redis.url_secret_ref.key
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
    return [] if ref is None else [_secret_env(Env.API_KEY_HASHES.value, *ref)]


def database_env(spec: OCRServingSpec) -> dict[str, Any]:
    ref = spec.database.url_secret_ref
    return _secret_env(Env.DATABASE_URL.value, ref.name, ref.key)


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def termination_grace_seconds(spec: OCRServingSpec) -> int:
    """Long enough for preStop, one batch to fill and the runtime's drain."""
    batch_wait = math.ceil(spec.batching.max_wait_ms / 1000)
    return PRESTOP_SECONDS + batch_wait + spec.drain_seconds + GRACE_MARGIN_SECONDS
