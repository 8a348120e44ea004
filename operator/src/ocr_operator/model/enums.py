"""Enumerations of the OCRServing resource (values as they appear in YAML)."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """Data-plane architecture of a serving stack."""

    STANDARD = "Standard"
    BATCHED = "Batched"
    WRITER = "Writer"

    @property
    def runtime_value(self) -> str:
        """The value of the runtime's OCR_MODE for this mode."""
        return self.value.lower()


class Policy(StrEnum):
    """Who decides the active mode."""

    MANUAL = "Manual"
    RECOMMEND = "Recommend"
    AUTO = "Auto"


class EngineKind(StrEnum):
    ONNX = "onnx"
    PADDLE = "paddle"
    NOOP = "noop"


class Device(StrEnum):
    CPU = "cpu"
    GPU = "gpu"


class TopicManagement(StrEnum):
    """How Kafka topics come to exist."""

    OPERATOR = "Operator"
    STRIMZI = "Strimzi"
    EXTERNAL = "External"


class AntiAffinity(StrEnum):
    NONE = "None"
    PREFERRED = "Preferred"
    REQUIRED = "Required"


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class Component(StrEnum):
    """A workload of the stack; also the value of the component label."""

    API = "api"
    WORKER = "worker"
    WRITER = "writer"


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    TOPICS_READY = "TopicsReady"
    MIGRATED = "Migrated"
    MODEL_READY = "ModelReady"
    # Owned by the advisor (issue 6); listed so that the CRD enum accepts them.
    ADVISOR_AVAILABLE = "AdvisorAvailable"
    TRANSITION_RECOMMENDED = "TransitionRecommended"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Reasons of the operator's conditions (machine-readable, CamelCase)."""

    RECONCILED = "Reconciled"
    PAUSED = "Paused"
    COMPONENTS_NOT_READY = "ComponentsNotReady"
    WAITING_FOR_TOPICS = "WaitingForTopics"
    WAITING_FOR_WRITER = "WaitingForWriter"
    WAITING_FOR_WORKERS = "WaitingForWorkers"
    DRAINING_RESULTS = "DrainingResults"
    INVALID_SPEC = "InvalidSpec"
    APPLY_FAILED = "ApplyFailed"
    KAFKA_UNAVAILABLE = "KafkaUnavailable"
    NOT_SUPPORTED = "NotSupported"
    TOPICS_READY = "TopicsReady"
    TOPICS_EXTERNAL = "TopicsExternal"
    STRIMZI_UNAVAILABLE = "StrimziUnavailable"
    AS_EXPECTED = "AsExpected"
    MIGRATING = "Migrating"
    MIGRATION_FAILED = "MigrationFailed"
    MIGRATION_SUCCEEDED = "MigrationSucceeded"
    ROLLING_OUT = "RollingOut"
    SCALING_REPLICAS = "ScalingReplicas"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    UNSCHEDULABLE = "Unschedulable"
    CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    ENGINE_MISMATCH = "EngineMismatch"
    API_KEY_UNAVAILABLE = "ApiKeyUnavailable"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    OBJECT_NOT_OWNED = "ObjectNotOwned"
    MODEL_LOADING = "ModelLoading"
    MODEL_LOADED = "ModelLoaded"
    MODEL_UNRESOLVED = "ModelUnresolved"
    MODEL_REFUSED = "ModelRefused"


class TopicDeletion(StrEnum):
    """What happens to rendered KafkaTopic resources when the OCRServing is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class AuthMode(StrEnum):
    """How the API authenticates callers."""

    API_KEY = "ApiKey"
    NONE = "None"
