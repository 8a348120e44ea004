"""`spec` of OCRServing: the pydantic model that is also the source of the CRD schema.

Every field carries a description (it becomes `kubectl explain` text); cross-field rules
are CEL expressions (`x-kubernetes-validations`) so the apiserver rejects bad specs with a
clear message before the operator ever sees them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from ocr_operator.model._base import ObjectName, WireModel, cel
from ocr_operator.model.advisor import AdvisorSpec
from ocr_operator.model.api import ApiAuth, ApiLimits
from ocr_operator.model.enums import (
    AntiAffinity,
    Device,
    EngineKind,
    Mode,
    Policy,
    PullPolicy,
    ServiceType,
    StackEngine,
)
from ocr_operator.model.kafka import KafkaSpec
from ocr_operator.model.model_source import ModelSpec
from ocr_operator.model.network import NetworkPolicySpec
from ocr_operator.model.pod import POD_RULES, PodSettings, ResourceName
from ocr_operator.model.scaling import CpuAutoscaling, LagAutoscaling, WorkerAutoscaling

LabelText = Annotated[str, StringConstraints(max_length=253)]
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^\S+$")]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")]


class ApiSpec(
    PodSettings,
    json_schema_extra=cel(
        *POD_RULES,
        (
            "self.serviceType == 'ClusterIP' || self.auth.mode != 'None'",
            "api.serviceType NodePort or LoadBalancer exposes the API outside the cluster and "
            "needs authentication: remove api.auth.mode None (the default, ApiKey, generates "
            "a key in the Secret <name>-api-key) or use serviceType ClusterIP",
        ),
    ),
):
    """The HTTP API (FastAPI) Deployment and its Service."""

    replicas: int = Field(2, ge=0, le=1000, description="Replicas when autoscaling is off.")
    image: ImageRef | None = Field(
        None,
        description="Full image reference overriding the default, the CPU image of "
        "spec.image (`<repository>:<tag>-onnx`).",
    )
    autoscaling: CpuAutoscaling = Field(
        default_factory=CpuAutoscaling, description="CPU-based autoscaling."
    )
    service_type: ServiceType = Field(
        ServiceType.CLUSTER_IP,
        description="Service type; NodePort and LoadBalancer need auth.mode ApiKey.",
    )
    auth: ApiAuth = Field(
        default_factory=ApiAuth, description="Authentication (API keys, on by default)."
    )
    limits: ApiLimits = Field(
        default_factory=ApiLimits, description="Rate limit and upload limits."
    )


class WorkerSpec(PodSettings):
    """The inference worker Deployment (consumes the jobs topic)."""

    replicas: int = Field(1, ge=0, le=1000, description="Replicas when autoscaling is off.")
    image: ImageRef | None = Field(
        None,
        description="Full image reference overriding the default, the variant of "
        "spec.image that fits spec.engine (`<repository>:<tag>-<kind>[-gpu]`).",
    )
    gpus: int = Field(
        1,
        ge=0,
        le=16,
        description="GPUs (gpuResourceName) per pod, requested when engine.device is gpu.",
    )
    gpu_resource_name: ResourceName = Field(
        "nvidia.com/gpu",
        description="Extended resource the GPUs are requested as, e.g. a MIG profile "
        "nvidia.com/mig-1g.10gb or amd.com/gpu.",
    )
    autoscaling: WorkerAutoscaling = Field(
        default_factory=WorkerAutoscaling,
        description="Autoscaling on jobs-topic lag: an HPA, or a KEDA ScaledObject.",
    )


class WriterSpec(PodSettings):
    """The result writer Deployment (Writer mode only; consumes the results topic)."""

    replicas: int = Field(1, ge=1, le=1000, description="Replicas when autoscaling is off.")
    image: ImageRef | None = Field(
        None,
        description="Full image reference overriding the default, the CPU image of "
        "spec.image (`<repository>:<tag>-onnx`).",
    )
    autoscaling: LagAutoscaling = Field(
        default_factory=LagAutoscaling, description="Autoscaling on results-topic lag."
    )


class EngineSpec(WireModel):
    """The OCR engine the workers load."""

    kind: StackEngine = Field(
        EngineKind.ONNX,
        description="onnx (RapidOCR on ONNX Runtime), "
        "paddle (PaddleOCR) or noop (plumbing benchmarks only).",
    )
    device: Device = Field(Device.CPU, description="Run inference on cpu or gpu.")
    model_version: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$", max_length=63)
    ] = Field(
        "default",
        description="Model version, recorded on the pods (label and OCR_MODEL_VERSION); a "
        "MANIFEST.json's version wins, and an MLflow model's label is the registry's version.",
    )
    threads: int = Field(0, ge=0, le=256, description="Intra-op threads (0: library default).")
    model: ModelSpec = Field(
        default_factory=ModelSpec,
        description="Where the model comes from: unset, the models in the image; uri or mlflow.",
    )


class BatchingSpec(WireModel):
    """Micro-batching knobs of the worker (used in Batched and Writer modes)."""

    max_size: int = Field(8, ge=1, le=1024, description="Most jobs in one batch.")
    max_wait_ms: int = Field(
        20,
        ge=0,
        le=10_000,
        description="Longest wait for a batch to fill after its first job arrived.",
    )
    max_pixels: int = Field(
        32_000_000, ge=1, le=2_000_000_000, description="Pixel budget of one batch."
    )
    latency_target_ms: int = Field(
        0,
        ge=0,
        le=600_000,
        description="p95 latency a batch may add (its wait, the engine, storing its results). "
        "Above 0 the workers tune batch size and wait online within it, up to maxSize and "
        "maxWaitMs (additive increase, multiplicative decrease); 0 keeps them fixed.",
    )


class SecretKeyRef(WireModel):
    """A key of a Secret in the resource's namespace."""

    name: ObjectName = Field(description="Secret name.")
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = Field(
        "url", description="Key in the Secret."
    )


class DatabaseSpec(WireModel):
    """Database connection (mysql+aiomysql://...)."""

    url_secret_ref: SecretKeyRef = Field(description="Secret key holding the database URL.")


class RedisSpec(WireModel):
    """Redis connection (duplicate suppression, rate limiting)."""

    url_secret_ref: SecretKeyRef = Field(description="Secret key holding the Redis URL.")


class PodDisruptionBudgetSpec(WireModel):
    """PodDisruptionBudget per component with more than one replica."""

    enabled: bool = Field(True, description="Create PodDisruptionBudgets.")
    max_unavailable: int = Field(1, ge=1, le=1000, description="Pods that may be down at once.")


class TopologySpreadSpec(WireModel):
    """Spread pods of each component over a topology domain."""

    enabled: bool = Field(False, description="Add a topology spread constraint.")
    topology_key: LabelText = Field(
        "topology.kubernetes.io/zone", description="Node label defining the domains."
    )
    max_skew: int = Field(1, ge=1, le=100, description="Largest allowed imbalance.")


class AvailabilitySpec(WireModel):
    """High-availability policies (they apply in every mode)."""

    pod_disruption_budget: PodDisruptionBudgetSpec = Field(
        default_factory=PodDisruptionBudgetSpec, description="PodDisruptionBudgets."
    )
    anti_affinity: AntiAffinity = Field(
        AntiAffinity.PREFERRED, description="Pod anti-affinity across nodes per component."
    )
    topology_spread: TopologySpreadSpec = Field(
        default_factory=TopologySpreadSpec, description="Topology spread constraints."
    )
    progress_deadline_seconds: int = Field(
        600,
        ge=30,
        le=86_400,
        description="A rollout that makes no progress for this long is Degraded "
        "(ProgressDeadlineExceeded); also each Deployment's progressDeadlineSeconds.",
    )


class ImageSpec(WireModel):
    """The runtime images: `<repository>:<tag>-<variant>`, one variant per engine build
    (`onnx`, `paddle`, `onnx-gpu`, `paddle-gpu`), as `make images` and the release build them."""

    repository: ImageRef | None = Field(
        None,
        description="Image repository without tag, e.g. ghcr.io/ocr-serving/ocr-runtime. "
        "Unset: the operator's default (chart value runtimeImage.repository).",
    )
    tag: ImageTag | None = Field(
        None,
        description="Version part of the tag, e.g. 0.1.0 (the variant is appended). "
        "Unset: the operator's default (chart value runtimeImage.tag).",
    )


class ArchitectureSpec(WireModel):
    """Which data-plane architecture runs, and who decides."""

    mode: Mode = Field(
        Mode.STANDARD,
        description="Standard, Batched or Writer. Under Manual it "
        "is applied as written; under Recommend/Auto it is the starting mode.",
    )
    policy: Policy = Field(
        Policy.MANUAL,
        description="Manual: apply mode as written; Recommend: "
        "the advisor recommends; Auto: the advisor switches status.activeMode.",
    )


class OCRServingSpec(
    WireModel,
    json_schema_extra=cel(
        (
            "self.engine.device != 'gpu' || self.worker.gpus >= 1",
            "engine.device gpu needs worker.gpus >= 1",
        ),
        (
            "!self.worker.autoscaling.enabled || self.worker.autoscaling.maxReplicas <= "
            "self.kafka.partitions",
            "worker.autoscaling.maxReplicas must not exceed kafka.partitions"
            " (extra workers would idle)",
        ),
        (
            "self.worker.autoscaling.enabled || self.worker.replicas <= self.kafka.partitions",
            "worker.replicas must not exceed kafka.partitions (extra workers would idle)",
        ),
        (
            "!self.writer.autoscaling.enabled || self.writer.autoscaling.maxReplicas <= "
            "self.kafka.partitions",
            "writer.autoscaling.maxReplicas must not exceed kafka.partitions"
            " (extra writers would idle)",
        ),
        (
            "self.api.limits.rateLimitPerMinute == 0 || has(self.redis)",
            "api.limits.rateLimitPerMinute needs spec.redis (the runtime counts requests there)",
        ),
    ),
):
    """Desired state of an OCR serving stack."""

    paused: bool = Field(False, description="Stop reconciling (children are left as they are).")
    image: ImageSpec = Field(
        default_factory=ImageSpec,
        description="Runtime images; the worker runs the variant of spec.engine, the API, "
        "writer and migration Job the CPU variant.",
    )
    image_pull_policy: PullPolicy = Field(PullPolicy.IF_NOT_PRESENT, description="Pull policy.")
    image_pull_secrets: list[ObjectName] = Field(
        default_factory=list, max_length=8, description="Names of image pull Secrets."
    )
    architecture: ArchitectureSpec = Field(
        default_factory=ArchitectureSpec, description="Mode and policy."
    )
    engine: EngineSpec = Field(default_factory=EngineSpec, description="OCR engine.")
    batching: BatchingSpec = Field(default_factory=BatchingSpec, description="Batching knobs.")
    api: ApiSpec = Field(default_factory=ApiSpec, description="API component.")
    worker: WorkerSpec = Field(default_factory=WorkerSpec, description="Worker component.")
    writer: WriterSpec = Field(
        default_factory=WriterSpec, description="Writer component (created only in Writer mode)."
    )
    kafka: KafkaSpec = Field(description="Kafka connection and topics.")
    database: DatabaseSpec = Field(description="Database connection.")
    redis: RedisSpec | None = Field(None, description="Redis connection (optional).")
    availability: AvailabilitySpec = Field(
        default_factory=AvailabilitySpec, description="Availability policies."
    )
    advisor: AdvisorSpec = Field(default_factory=AdvisorSpec, description="Advisor settings.")
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec,
        description="NetworkPolicies of the stack's pods (rendered by default).",
    )
    http_port: int = Field(
        8000,
        ge=1024,
        le=65535,
        description="Container port of every "
        "component (API; probes and metrics of worker and writer).",
    )
    drain_seconds: int = Field(
        25,
        ge=1,
        le=3600,
        description="Graceful shutdown budget; the termination grace period adds a margin on top.",
    )
    log_level: Annotated[str, StringConstraints(pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")] = Field(
        "INFO", description="Log level."
    )
