"""Autoscaling of the components: an HPA on CPU (api), an HPA on consumer lag (worker,
writer), or for the worker a KEDA ScaledObject with the Kafka scaler, which can scale it to
zero. Either way the autoscaler owns the Deployment's replicas and the operator stops
rendering them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from ocr_operator.model._base import WireModel, cel


class AutoscalingProvider(StrEnum):
    """What scales the workers when autoscaling is enabled."""

    HPA = "HPA"
    KEDA = "KEDA"


class CpuAutoscaling(
    WireModel,
    json_schema_extra=cel(
        ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
    ),
):
    """HorizontalPodAutoscaler on average CPU utilisation."""

    enabled: bool = Field(False, description="Create a HorizontalPodAutoscaler.")
    min_replicas: int = Field(1, ge=1, le=1000, description="Fewest replicas.")
    max_replicas: int = Field(4, ge=1, le=1000, description="Most replicas.")
    target_cpu_utilization_percentage: int = Field(
        70, ge=1, le=100, description="Average CPU utilisation the autoscaler aims at."
    )


class LagAutoscaling(
    WireModel,
    json_schema_extra=cel(
        ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
    ),
):
    """HorizontalPodAutoscaler on Kafka consumer lag per replica (an External metric)."""

    enabled: bool = Field(False, description="Create a HorizontalPodAutoscaler.")
    min_replicas: int = Field(1, ge=1, le=1000, description="Fewest replicas.")
    max_replicas: int = Field(6, ge=1, le=1000, description="Most replicas.")
    lag_per_replica: int = Field(
        10, ge=1, le=1_000_000, description="Target consumer lag per replica (AverageValue)."
    )
    metric_name: Annotated[str, StringConstraints(max_length=253, min_length=1)] = Field(
        "kafka_consumergroup_lag",
        description="External metric name served by the metrics adapter; it is selected by "
        "the labels consumergroup and topic.",
    )


class WorkerAutoscaling(
    LagAutoscaling,
    json_schema_extra=cel(
        ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
        (
            "self.provider == 'KEDA' || self.minReplicas >= 1",
            "minReplicas 0 (scale to zero) needs provider KEDA: an HPA cannot scale to zero",
        ),
    ),
):
    """Worker autoscaling on jobs-topic lag per replica: an HPA on an External metric, or a
    KEDA ScaledObject with the Kafka scaler (which can scale to zero)."""

    enabled: bool = Field(
        False, description="Autoscale the workers (an HPA or a ScaledObject, by provider)."
    )
    provider: AutoscalingProvider = Field(
        AutoscalingProvider.HPA,
        description="HPA: a HorizontalPodAutoscaler on metricName (needs a metrics adapter); "
        "KEDA: a keda.sh ScaledObject with the Kafka scaler reading the lag itself (needs "
        "KEDA installed).",
    )
    min_replicas: int = Field(
        1, ge=0, le=1000, description="Fewest replicas; 0 (scale to zero) with KEDA only."
    )
    activation_lag: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="KEDA: lag above which an idle (zero-replica) worker set wakes "
        "(activationLagThreshold); 0: the first job wakes it.",
    )
    cooldown_seconds: int = Field(
        300,
        ge=0,
        le=86_400,
        description="KEDA: how long the lag stays at or below activationLag before the "
        "workers scale to zero (cooldownPeriod).",
    )
