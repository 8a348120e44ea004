"""The one Settings object of a runtime process. Read from `OCR_*` environment variables,
validated at start (`Settings()` raises on bad values), then passed in explicitly."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ocr_contract import (
    ENV_PREFIX,
    Device,
    EngineKind,
    KafkaSecurityProtocol,
    RuntimeMode,
    SaslMechanism,
    unknown_settings,
)
from ocr_runtime.core.kafka_security import check_kafka_security

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


# The names the operator shares with the runtime come from the contract; the runtime calls
# the data-plane mode simply Mode.
Mode = RuntimeMode


class LineOrientation(StrEnum):
    """How the engines treat the orientation of each detected text line."""

    UPRIGHT = "upright"  # lines are read as they stand: no angle classifier
    # An angle classifier turns lines it finds upside down. It also flips some upright
    # lines heavy in digits (dates, amounts), so it only pays on pages scanned upside down.
    DETECT = "detect"


class BlobBackend(StrEnum):
    DATABASE = "database"
    FILESYSTEM = "filesystem"


class BlobRetention(StrEnum):
    DELETE_ON_FINISH = "delete_on_finish"  # drop the image once its job is terminal
    KEEP = "keep"  # keep images (debugging, audits); something else must clean up


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- process ---
    mode: Mode = Field(Mode.STANDARD, description="Data-plane architecture.")
    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    http_port: int = Field(
        8000,
        ge=1,
        le=65535,
        description="HTTP port (API, or probes and metrics for worker and writer).",
    )
    log_level: str = Field("INFO", description="Python log level.")

    # --- storage ---
    database_url: str = Field(
        "sqlite+aiosqlite:///./.local/ocr.db",
        description="Async SQLAlchemy URL: mysql+aiomysql://... or sqlite+aiosqlite:///...",
    )
    database_pool_size: int = Field(10, ge=1, description="Connections kept per process.")
    blob_backend: BlobBackend = Field(BlobBackend.DATABASE, description="Where image bytes go.")
    blob_dir: Path = Field(Path("./.local/blobs"), description="Folder for filesystem blobs.")
    blob_retention: BlobRetention = Field(
        BlobRetention.DELETE_ON_FINISH,
        description="What happens to an image once its job finished.",
    )

    # --- queue ---
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    jobs_topic: str = Field("ocr-jobs", description="Topic the API publishes jobs to.")
    results_topic: str = Field("ocr-results", description="Topic of results (writer mode).")
    dead_letter_topic: str = Field("ocr-jobs-dlq", description="Topic of poison jobs.")
    consumer_group: str = Field("ocr-workers", description="Consumer group of workers.")
    writer_group: str = Field("ocr-writers", description="Consumer group of writers.")
    kafka_create_topics: bool = Field(
        True, description="Workers and writers create missing topics at start."
    )
    kafka_partitions: int = Field(
        6,
        ge=1,
        le=1000,
        description="Partitions of topics created at start (upper bound on "
        "useful worker and writer replicas).",
    )
    kafka_replication: int = Field(1, ge=1, le=10, description="Replicas of created topics.")
    kafka_job_linger_ms: int = Field(
        5,
        ge=0,
        le=1000,
        description="How long the API's producer gathers job messages into one request "
        "(Kafka 4.0's default linger); workers and writers send each batch at once.",
    )
    kafka_session_timeout_ms: int = Field(
        10_000,
        ge=6_000,
        le=300_000,
        description="Consumer session timeout: how long a dead member keeps its partitions.",
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        KafkaSecurityProtocol.PLAINTEXT,
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, for every Kafka client.",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        SaslMechanism.SCRAM_SHA_512, description="SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user (SASL_* protocols).")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_ca_file: Path | None = Field(
        None, description="PEM CA bundle the broker certificate is checked against "
        "(unset: the system's CAs)."
    )  # fmt: skip
    kafka_ssl_cert_file: Path | None = Field(
        None, description="PEM client certificate for mTLS (with OCR_KAFKA_SSL_KEY_FILE)."
    )
    kafka_ssl_key_file: Path | None = Field(None, description="PEM key of the client cert.")

    # --- engine ---
    engine: EngineKind = Field(EngineKind.ONNX, description="OCR engine.")
    device: Device = Field(Device.CPU, description="Run inference on cpu or gpu.")
    model_dir: Path | None = Field(
        None,
        description="Folder of the engine's models, checked at load (onnx: det.onnx, "
        "rec.onnx, optional cls.onnx and dict.txt; paddle: det/, rec/, dict.txt, optional "
        "cls/; optional MANIFEST.json with name, version and SHA-256 per file). Unset: the "
        "models shipped in the engine's wheel.",
    )
    model_s3_endpoint: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="S3 API that fetch-model reads s3:// model sources from, path-style "
        "(https://s3.eu-west-1.amazonaws.com, http://minio.storage.svc:9000).",
    )
    model_s3_region: str = Field(
        "us-east-1", min_length=1, description="Region S3 requests are signed for."
    )
    model_s3_access_key_id: str | None = Field(
        None, description="S3 access key id (unset with the secret: unsigned requests)."
    )
    model_s3_secret_access_key: SecretStr | None = Field(
        None, description="S3 secret access key (with OCR_MODEL_S3_ACCESS_KEY_ID)."
    )
    engine_threads: int = Field(
        0,
        ge=0,
        description="Inference threads: ONNX Runtime intra-op, Paddle CPU math (0: the "
        "CPUs of the container's quota, see core/cpu.py).",
    )
    model_version: str = Field(
        "default",
        description="Model version reported in /readyz and ocr_runtime_info when the model "
        "folder has no MANIFEST.json (the operator sets it from spec.engine.modelVersion).",
    )
    det_batch_size: int = Field(
        0,
        ge=0,
        le=64,
        description="ONNX engine: images per text-detection call, padded to a "
        "common size (0: auto, 1 on cpu where batching detection is slower, 8 on gpu).",
    )
    rec_batch_size: int = Field(
        0,
        ge=0,
        le=1024,
        description="Text lines per recognition call, gathered from every "
        "image of a batch and sorted by aspect ratio (0: auto, 6 on cpu, 64 on gpu).",
    )
    line_orientation: LineOrientation = Field(
        LineOrientation.UPRIGHT,
        description="upright: read text lines as they stand; detect: run the angle "
        "classifier and turn lines it finds upside down (it misreads some upright lines "
        "of digits as upside down).",
    )

    # --- batching ---
    batch_max_size: int = Field(8, ge=1, le=1024, description="Most jobs in one batch.")
    batch_max_wait_ms: int = Field(
        20,
        ge=0,
        le=10_000,
        description="Longest wait for a batch to fill after its first job arrived.",
    )
    batch_max_pixels: int = Field(32_000_000, ge=1, description="Pixel budget of one batch.")
    batch_latency_target_ms: int = Field(
        0,
        ge=0,
        le=600_000,
        description="p95 latency a batch may add (its wait, the engine and storing the "
        "results); batched workers then tune batch size and wait online within it, up to "
        "batch_max_size and batch_max_wait_ms. 0: fixed size and wait.",
    )
    writer_batch_max_size: int = Field(
        500, ge=1, le=10_000, description="Most results in one writer transaction."
    )
    writer_batch_max_wait_ms: int = Field(
        20, ge=0, le=10_000, description="Longest wait for a writer batch to fill."
    )

    # --- reliability ---
    max_attempts: int = Field(3, ge=1, le=100, description="Attempts before a job is dead.")
    retry_backoff_ms: int = Field(200, ge=0, description="First retry delay, doubled each time.")
    drain_seconds: float = Field(25.0, gt=0, description="Longest graceful shutdown.")
    commit_interval_ms: int = Field(
        200,
        ge=0,
        le=60_000,
        description="Shortest time between two Kafka offset commits of a worker or writer; "
        "the batches finished meanwhile share one commit (revoke and shutdown commit at "
        "once). A crash redelivers at most this much, which workers skip as finished. "
        "0: a commit after every batch.",
    )

    # --- API limits and auth ---
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Largest upload (413).")
    max_pixels: int = Field(
        40_000_000, ge=1, description="Largest image, or page of a document, in pixels (422)."
    )
    max_pages: int = Field(100, ge=1, le=10_000, description="Most pages of a document (422).")
    pdf_dpi: int = Field(200, ge=72, le=400, description="Resolution PDF pages are rendered at.")
    render_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Longest rasterisation of one document (worker)."
    )
    api_key_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SHA-256 hex digests of accepted API keys; empty disables authentication.",
    )
    sync_timeout_default_s: float = Field(30.0, gt=0, description="Default wait of /v1/ocr.")
    sync_timeout_max_s: float = Field(
        300.0, gt=0, description="Longest wait a /v1/ocr client may ask for."
    )
    inprocess_queue_size: int = Field(
        10_000,
        ge=1,
        description="All-in-one: most jobs waiting "
        "in the in-process queue before submissions get 503.",
    )

    # --- redis (optional) ---
    redis_url: SecretStr | None = Field(
        None, description="Redis for duplicate suppression and rate limiting; unset disables both."
    )
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests per client per minute (0: unlimited). Needs Redis."
    )
    dedup_window_s: int = Field(
        600, ge=1, description="How long a duplicate upload maps to the first job. Needs Redis."
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not (
            self.database_url.startswith("sqlite+aiosqlite")
            or self.database_url.startswith("mysql+aiomysql")
        ):
            raise ValueError("OCR_DATABASE_URL must be sqlite+aiosqlite:// or mysql+aiomysql://")
        for digest in self.api_key_hashes:
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError("OCR_API_KEY_HASHES must hold SHA-256 hex digests (64 hex chars)")
        if (self.model_s3_access_key_id is None) != (self.model_s3_secret_access_key is None):
            raise ValueError(
                "OCR_MODEL_S3_ACCESS_KEY_ID and OCR_MODEL_S3_SECRET_ACCESS_KEY go together"
            )
        if self.sync_timeout_default_s > self.sync_timeout_max_s:
            raise ValueError("OCR_SYNC_TIMEOUT_DEFAULT_S exceeds OCR_SYNC_TIMEOUT_MAX_S")
        check_kafka_security(
            self.kafka_security_protocol,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
            ca_file=self.kafka_ssl_ca_file,
            cert_file=self.kafka_ssl_cert_file,
            key_file=self.kafka_ssl_key_file,
        )
        return self

    @field_validator("api_key_hashes", mode="before")
    @classmethod
    def _split_hashes(cls, value: object) -> object:
        # Accept "a,b" as well as the JSON list pydantic-settings reads by default.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return [str(part).strip().lower() for part in json.loads(text)]
            return [part.strip().lower() for part in text.split(",") if part.strip()]
        if isinstance(value, list):
            return [str(part).strip().lower() for part in value]
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("OCR_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level


# Every variable the operator renders must name a field here: checked once, at import, so a
# renamed field cannot ship with an operator that still sets the old name.
_UNKNOWN = unknown_settings(frozenset(Settings.model_fields))
if _UNKNOWN:
    raise TypeError(f"the contract's settings are not fields of Settings: {_UNKNOWN}")

__all__ = [
    "BlobBackend",
    "BlobRetention",
    "Device",
    "EngineKind",
    "LineOrientation",
    "Mode",
    "Settings",
]
