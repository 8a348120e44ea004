"""What the operator and the runtime agree on, declared once: both import it, so a name
cannot drift between them. Standard library only."""

from __future__ import annotations

from ocr_contract.enums import (
    STACK_ENGINES,
    Component,
    Device,
    EngineKind,
    KafkaSecurityProtocol,
    Mode,
    Role,
    RuntimeMode,
    SaslMechanism,
    Topic,
)
from ocr_contract.env import ENV_PREFIX, Env, unknown_settings
from ocr_contract.metrics import Metric
from ocr_contract.topology import (
    TOPIC_SETTINGS,
    TOPOLOGY,
    Run,
    Topology,
    component_run,
    components,
    optional_components,
)

__all__ = [
    "ENV_PREFIX",
    "STACK_ENGINES",
    "TOPIC_SETTINGS",
    "TOPOLOGY",
    "Component",
    "Device",
    "EngineKind",
    "Env",
    "KafkaSecurityProtocol",
    "Metric",
    "Mode",
    "Role",
    "Run",
    "RuntimeMode",
    "SaslMechanism",
    "Topic",
    "Topology",
    "component_run",
    "components",
    "optional_components",
    "unknown_settings",
]
