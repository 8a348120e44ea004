"""Enumerations of the OCRServing resource (values as they appear in YAML).

Modes, engines, devices and components are the runtime's too: they come from the contract.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ocr_contract import STACK_ENGINES, Component, Device, EngineKind, Mode

__all__ = [
    "AntiAffinity",
    "AuthMode",
    "Component",
    "ConditionStatus",
    "ConditionType",
    "Device",
    "EngineKind",
    "Mode",
    "Policy",
    "PullPolicy",
    "Reason",
    "ServiceType",
    "StackEngine",
    "TopicDeletion",
    "TopicManagement",
]


class Policy(StrEnum):
    """Who decides the active mode."""

    MANUAL = "Manual"
    RECOMMEND = "Recommend"
    AUTO = "Auto"


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


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    TOPICS_READY = "TopicsReady"
    MIGRATED = "Migrated"
    MODEL_READY = "ModelReady"
    # Owned by the advisor; listed so that the CRD enum accepts them.
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
    ACCESS_DENIED = "AccessDenied"


class TopicDeletion(StrEnum):
    """What happens to rendered KafkaTopic resources when the OCRServing is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class AuthMode(StrEnum):
    """How the API authenticates callers."""

    API_KEY = "ApiKey"
    NONE = "None"


def _stack_engine(kind: EngineKind) -> EngineKind:
    if kind not in STACK_ENGINES:
        raise ValueError(f"engine {kind.value} does not run in a stack")
    return kind


class _StackEnginesSchema:
    """The schema's EngineKind lists only the engines a stack may run."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        handler.resolve_ref_schema(json_schema)["enum"] = [e.value for e in STACK_ENGINES]
        return json_schema


# The runtime knows one more engine (the failure drills' synthetic one): a stack may ask for
# the others only, in validation as in the CRD.
StackEngine = Annotated[EngineKind, AfterValidator(_stack_engine), _StackEnginesSchema()]
