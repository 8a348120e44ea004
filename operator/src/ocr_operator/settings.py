"""Operator settings (`OCR_OPERATOR_*`), read once at start and passed in explicitly."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCR_OPERATOR_", extra="ignore", frozen=True)

    resync_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Period of the level-based resync timer (drift correction).",
    )
    wait_seconds: float = Field(
        5.0,
        ge=0.5,
        le=600,
        description="Retry delay while a "
        "transition waits (writer Ready, workers rolled, topic drained).",
    )
    error_backoff_seconds: float = Field(
        15.0, ge=1, le=3600, description="Retry delay after a temporary failure (apiserver, Kafka)."
    )
    kafka_bootstrap: str | None = Field(
        None,
        description="Override of spec.kafka."
        "bootstrapServers for the operator's own admin calls "
        "(when the operator reaches Kafka by another address).",
    )
    prometheus_url: str | None = Field(
        None, description="Default Prometheus address of the advisor."
    )
