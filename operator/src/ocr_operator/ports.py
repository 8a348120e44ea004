"""The ports reconcile talks through: the apiserver, the Kafka topic admin and the model
registry.

The real adapters are `apply.KubeClient`, `kafka_topics.KafkaTopicAdmin` and
`mlflow_registry.MlflowRegistry`; the unit tests
pass in-memory fakes that mypy checks against these Protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ocr_operator import API_GROUP, API_VERSION, FIELD_MANAGER, KIND
from ocr_operator.model.model_source import MlflowModelRef, ResolvedModel
from ocr_operator.render import Kind, Manifest

Body = dict[str, Any]


class KubeError(Exception):
    """A request to the apiserver failed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def temporary(self) -> bool:
        """Worth retrying (throttling, server errors, conflicts, network)."""
        return self.status in {0, 409, 429} or self.status >= 500


@dataclass(frozen=True)
class Owner:
    """The OCRServing that owns the children."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> Body:
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


class KubeApi(Protocol):
    """The operator's handful of apiserver calls."""

    async def apply(
        self, manifest: Manifest, owner: Owner, field_manager: str = FIELD_MANAGER
    ) -> Body: ...

    async def create(self, manifest: Manifest, owner: Owner) -> bool:
        """Create the object unless one of that name exists (then False, left as it is)."""
        ...

    async def get(self, kind: Kind, namespace: str, name: str) -> Body | None: ...

    async def list(self, kind: Kind, namespace: str, labels: Mapping[str, str]) -> list[Body]: ...

    async def delete(self, kind: Kind, namespace: str, name: str) -> None: ...

    async def get_own(
        self, namespace: str, name: str, live: Mapping[str, Any] | None = None
    ) -> Body | None:
        """The OCRServing; `live` (kopf's copy) may stand in for the read."""
        ...

    def forget_own(self, uid: str) -> None:
        """Drop what `get_own` keeps about one OCRServing (it is gone)."""
        ...

    async def patch_status(self, namespace: str, name: str, status: Body) -> Body: ...

    async def event(self, owner: Owner, warning: bool, reason: str, message: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TopicRequest:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class ShrinkRefused:
    topic: str
    current: int
    requested: int

    def describe(self) -> str:
        return (
            f"topic {self.topic} has {self.current} partitions; decreasing to "
            f"{self.requested} is not supported"
        )


@dataclass(frozen=True)
class TopicReport:
    created: tuple[str, ...] = ()
    grown: tuple[str, ...] = ()
    not_supported: tuple[ShrinkRefused, ...] = ()


class TopicAdmin(Protocol):
    """Kafka topic administration and the one lag reading reconcile needs."""

    async def ensure(self, bootstrap: str, topics: Sequence[TopicRequest]) -> TopicReport:
        """Create missing topics and grow partitions; never shrink, never delete."""
        ...

    async def lag(self, bootstrap: str, group: str, topic: str) -> int:
        """Messages of `topic` not yet committed by `group` (0 for a missing topic)."""
        ...


class ModelRegistryError(Exception):
    """The model registry did not resolve spec.engine.model.mlflow."""

    temporary = False  # True: worth retrying as it is


class RegistryUnavailableError(ModelRegistryError):
    """The registry did not answer (network, server error): try again later; the workers
    keep the version resolved last."""

    temporary = True


class ModelNotFoundError(ModelRegistryError):
    """The registry has no such model, version or alias: a person must fix the spec or the
    registry."""


class ModelRegistry(Protocol):
    """Resolves a registered model reference (an alias, or a version) to its version and the
    location of its files."""

    async def resolve(self, ref: MlflowModelRef) -> ResolvedModel: ...
