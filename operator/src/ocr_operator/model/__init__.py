"""The OCRServing resource model (pure: no Kubernetes client)."""

from ocr_operator.model.enums import (
    AntiAffinity,
    Component,
    ConditionStatus,
    ConditionType,
    Device,
    EngineKind,
    Mode,
    Policy,
    Reason,
    TopicDeletion,
    TopicManagement,
)
from ocr_operator.model.modes import resolve_active_mode
from ocr_operator.model.spec import OCRServingSpec
from ocr_operator.model.status import (
    AdvisorStatus,
    ComponentStatus,
    Condition,
    OCRServingStatus,
    Recommendation,
    Transition,
)

__all__ = [
    "AdvisorStatus",
    "AntiAffinity",
    "Component",
    "ComponentStatus",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Device",
    "EngineKind",
    "Mode",
    "OCRServingSpec",
    "OCRServingStatus",
    "Policy",
    "Reason",
    "Recommendation",
    "TopicDeletion",
    "TopicManagement",
    "Transition",
    "resolve_active_mode",
]
