"""Operator settings (`OCR_OPERATOR_*`), read once at start and passed in explicitly."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ocr_operator.kafka_security import KafkaClientSettings
from ocr_operator.leader import LeaseTimings
from ocr_operator.render import StackDefaults


class OperatorSettings(KafkaClientSettings):
    model_config = SettingsConfigDict(env_prefix="OCR_OPERATOR_", extra="ignore", frozen=True)

    resync_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Period of the level-based resync timer (drift correction).",
    )
    # A settled stack's resync pass applies everything anyway; this bounds one that never
    # settles. 300 rather than the resync period: passes that found the apiserver slow (over
    # half a minute each at 200 stacks on 2 cores) then re-applied everything every time.
    reapply_seconds: float = Field(
        300.0,
        ge=1,
        le=86_400,
        description="Every child is server-side applied again at least this often, even "
        "when its rendered manifest did not change and no resync pass came (drift "
        "correction); passes woken by a change or a wait apply only what changed.",
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
    # 16: an apiserver call is mostly waiting (the operator's own CPU per call is a few
    # hundred microseconds), so a pass of each of a few dozen converging stacks can be in
    # flight without queueing in the operator, while staying far below the apiserver's own
    # limit (--max-requests-inflight, 400 by default); each thread costs little memory.
    kube_threads: int = Field(
        16,
        ge=1,
        le=128,
        description="Apiserver calls of the reconcile loops in flight at once (threads and "
        "pooled connections of the operator's Kubernetes client).",
    )
    # A started pass then finishes in seconds instead of waiting behind every other stack's
    # calls in the client's queue, and the bodies that passes hold are bounded: with 200
    # stacks created at once and no bound, all 200 first passes ran interleaved, each took
    # as long as the whole round, and the operator peaked 50 MiB higher.
    max_passes_in_flight: int = Field(
        64,
        ge=1,
        le=1024,
        description="Reconcile passes run at once; the others wait for a free slot.",
    )
    watch_children: bool = Field(
        True,
        description="Watch the stacks' Deployments and Jobs and reconcile a stack as soon as "
        "one of them changes (a rollout or migration finished, a child deleted), instead of "
        "at the next wait or resync poll only. Needs `watch` on deployments and jobs (the "
        "chart grants it); false polls instead.",
    )
    kafka_bootstrap: str | None = Field(
        None,
        description="Override of spec.kafka."
        "bootstrapServers for the operator's own admin calls "
        "(when the operator reaches Kafka by another address).",
    )
    runtime_repository: str = Field(
        "ghcr.io/ocr-serving/ocr-runtime",
        min_length=1,
        description="Runtime image repository of stacks whose spec.image.repository is unset.",
    )
    runtime_tag: str = Field(
        "0.1.0",
        min_length=1,
        description="Runtime image version of stacks whose spec.image.tag is unset (the "
        "engine variant is appended: 0.1.0-onnx).",
    )
    default_node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node selector (JSON object) for the pods of a component whose spec "
        "sets neither nodeSelector nor tolerations.",
    )
    default_tolerations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Tolerations (JSON list) for the pods of a component whose spec sets "
        "neither nodeSelector nor tolerations.",
    )
    prometheus_url: str | None = Field(
        None, description="Default Prometheus address of the advisor."
    )
    allowed_image_prefixes: list[str] = Field(
        default_factory=list,
        description="Image references stacks may run (JSON list of prefixes, e.g. "
        '["ghcr.io/ocr-serving/", "registry.example.com/ocr/"]); a stack whose spec names '
        "another image is Degraded (ImageNotAllowed) and nothing of it is applied. Empty: any "
        "image. End each prefix with / (or :) so that it cannot match a longer name.",
    )

    def image_allowed(self, image: str) -> bool:
        prefixes = self.allowed_image_prefixes
        return not prefixes or any(image.startswith(prefix) for prefix in prefixes)

    identity: str | None = Field(
        None,
        description="This replica's name in the leader Lease (the chart sets the pod name); "
        "default: the host name and a random suffix.",
    )
    lease_duration_seconds: float = Field(
        15.0, ge=2, le=300, description="How long a standby waits for a leader's renewal."
    )
    lease_renew_deadline_seconds: float = Field(
        10.0,
        ge=1,
        le=300,
        description="How long a leader keeps trying to renew before it steps down (less "
        "than the lease duration).",
    )
    lease_retry_seconds: float = Field(
        2.0, ge=0.2, le=60, description="Period of renewals and of a standby's attempts."
    )

    @model_validator(mode="after")
    def _lease_timings_ordered(self) -> OperatorSettings:
        self.lease_timings()
        return self

    def lease_timings(self) -> LeaseTimings:
        """ValueError when the three are not retry < renew deadline < duration."""
        return LeaseTimings(
            duration_seconds=self.lease_duration_seconds,
            renew_deadline_seconds=self.lease_renew_deadline_seconds,
            retry_seconds=self.lease_retry_seconds,
        )

    def stack_defaults(self) -> StackDefaults:
        return StackDefaults(
            repository=self.runtime_repository,
            tag=self.runtime_tag,
            node_selector=dict(self.default_node_selector),
            tolerations=[dict(t) for t in self.default_tolerations],
        )
