"""What reconcile keeps between passes (one per operator process), and what a pass returns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ocr_operator.applied import AppliedMemo
from ocr_operator.child_events import MigrationJobs
from ocr_operator.kafka_topics import KafkaTopicAdmin
from ocr_operator.mlflow_registry import MlflowRegistry
from ocr_operator.model import Mode
from ocr_operator.ports import KubeApi, ModelRegistry, TopicAdmin
from ocr_operator.render import Phase
from ocr_operator.settings import OperatorSettings
from ocr_operator.telemetry import OperatorMetrics


@dataclass
class ReconcileContext:
    """Long-lived dependencies of reconcile (one per operator process)."""

    kube: KubeApi
    settings: OperatorSettings
    topics: TopicAdmin = field(default_factory=KafkaTopicAdmin)
    registry: ModelRegistry = field(default_factory=MlflowRegistry)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    # When the generated API key Secret of a resource (uid) was last found or created: the
    # operator cannot read Secrets, so it re-creates blind, but not on every resync.
    api_keys_seen: dict[str, float] = field(default_factory=dict)
    # What was applied last per resource: unchanged children are not applied again until
    # the entry is `reapply_seconds` old (drift correction).
    applied: AppliedMemo = field(init=False)

    # The stacks' migration Jobs as the watch showed them, or a read found them finished.
    jobs: MigrationJobs = field(default_factory=MigrationJobs)

    # Bounds the passes in flight (`max_passes_in_flight`).
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.applied = AppliedMemo(max_age=self.settings.reapply_seconds)
        self.slots = asyncio.Semaphore(self.settings.max_passes_in_flight)

    def lock(self, uid: str) -> asyncio.Lock:
        """Serialises reconciles (and advisor status writes) of one resource."""
        return self.locks.setdefault(uid, asyncio.Lock())


@dataclass(frozen=True)
class ReconcileOutcome:
    """What happened; `retry_after` is set while waiting or after a temporary failure."""

    active_mode: Mode | None
    phase: Phase | None
    ready: bool
    retry_after: float | None
    message: str
