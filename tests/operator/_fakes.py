"""In-memory fakes of the two ports reconcile uses (checked by mypy against the Protocols:
`ReconcileContext` takes a `KubeApi` and a `TopicAdmin`, with no cast)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ocr_operator import FIELD_MANAGER
from ocr_operator.ports import Body, KubeApi, Owner, TopicAdmin, TopicReport, TopicRequest
from ocr_operator.reconcile import ReconcileContext
from ocr_operator.render import Kind, Manifest
from ocr_operator.settings import OperatorSettings

NS, NAME, UID = "ns", "demo", "uid-1"


class FakeKube:
    """Just enough apiserver: Deployments become available as soon as they are applied
    (unless named in `unready`), migration Jobs complete at once unless `job_outcome` says
    otherwise, and `pods` is what a pod list returns."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.resource: Body = {
            "metadata": {"name": NAME, "namespace": NS, "uid": UID, "generation": 1},
            "spec": spec,
            "status": {},
        }
        self.objects: dict[tuple[Kind, str], Body] = {}
        self.unready: set[str] = set()
        self.held: set[str] = set()  # applied while unready: becomes ready once released
        self.job_outcome: str | None = "Complete"  # None: still running; "Failed"
        self.pods: list[Body] = []
        self.applied: list[tuple[Kind, str]] = []
        self.deleted: list[tuple[Kind, str]] = []
        self.created: list[tuple[Kind, str]] = []
        self.handoffs: list[tuple[tuple[Kind, str], Body]] = []
        self.events: list[str] = []

    async def get_own(
        self, namespace: str, name: str, live: Mapping[str, Any] | None = None
    ) -> Body | None:
        return copy.deepcopy(self.resource)  # always current: `live` is never needed

    def forget_own(self, uid: str) -> None:
        return None  # `get_own` keeps nothing

    async def patch_status(self, namespace: str, name: str, status: Body) -> Body:
        merged = {**self.resource["status"], **status}
        self.resource["status"] = {k: v for k, v in merged.items() if v is not None}
        return self.resource

    async def apply(
        self, manifest: Manifest, owner: Owner, field_manager: str = FIELD_MANAGER
    ) -> Body:
        if field_manager != FIELD_MANAGER:
            self.handoffs.append((manifest.key, manifest.body["spec"]))
            return copy.deepcopy(self.objects[manifest.key])
        body = copy.deepcopy(manifest.body)
        body["metadata"]["generation"] = 1
        if manifest.owned:
            body["metadata"]["ownerReferences"] = [owner.reference()]
        previous = self.objects.get(manifest.key)
        if previous is not None and "replicas" in (previous.get("spec") or {}):
            # Server-side apply leaves fields it does not send (the autoscaler's replicas).
            body.get("spec", {}).setdefault("replicas", previous["spec"]["replicas"])
        held = manifest.name in self.held and manifest.name not in self.unready
        if previous is not None and previous.get("spec") == body.get("spec") and not held:
            # Same spec again: the apiserver keeps the generation and the controller's status.
            body["metadata"]["generation"] = previous["metadata"]["generation"]
            if "status" in previous:
                body["status"] = previous["status"]
        elif manifest.kind is Kind.DEPLOYMENT:
            replicas = body["spec"].get("replicas", 1)
            ready = 0 if manifest.name in self.unready else replicas
            if manifest.name in self.unready:
                self.held.add(manifest.name)
            else:
                self.held.discard(manifest.name)
            body["status"] = {
                "observedGeneration": 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
            }
        self.objects[manifest.key] = body
        self.applied.append(manifest.key)
        return body

    async def create(self, manifest: Manifest, owner: Owner) -> bool:
        if manifest.key in self.objects:
            return False
        body = copy.deepcopy(manifest.body)
        if manifest.owned:
            body["metadata"]["ownerReferences"] = [owner.reference()]
        self.objects[manifest.key] = body
        self.created.append(manifest.key)
        return True

    async def get(self, kind: Kind, namespace: str, name: str) -> Body | None:
        body = copy.deepcopy(self.objects.get((kind, name)))
        if body is not None and kind is Kind.JOB and self.job_outcome is not None:
            body["status"] = {
                "conditions": [
                    {
                        "type": self.job_outcome,
                        "status": "True",
                        "reason": "BackoffLimitExceeded"
                        if self.job_outcome == "Failed"
                        else "Completed",
                        "message": "Job has reached the specified backoff limit",
                    }
                ]
            }
        return body

    async def list(self, kind: Kind, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        if kind is Kind.POD:
            return copy.deepcopy(self.pods)
        return [copy.deepcopy(b) for (k, _), b in self.objects.items() if k is kind]

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.objects.pop((kind, name), None)
        self.deleted.append((kind, name))

    async def event(self, owner: Owner, warning: bool, reason: str, message: str) -> None:
        self.events.append(reason)

    def close(self) -> None:
        return None

    def set_deployment_status(self, name: str, **status: Any) -> None:
        self.objects[(Kind.DEPLOYMENT, name)]["status"].update(status)


class FakeTopics:
    """Topics always exist; `lag` is the writer group's lag on the results topic."""

    def __init__(self) -> None:
        self.lag_value = 0
        self.lag_reads = 0
        self.lag_of: set[tuple[str, str]] = set()  # (group, topic) pairs read

    async def ensure(self, bootstrap: str, topics: Sequence[TopicRequest]) -> TopicReport:
        return TopicReport()

    async def lag(self, bootstrap: str, group: str, topic: str) -> int:
        self.lag_reads += 1
        self.lag_of.add((group, topic))
        return self.lag_value


def context(
    kube: FakeKube, topics: FakeTopics | None = None, settings: OperatorSettings | None = None
) -> ReconcileContext:
    api: KubeApi = kube
    admin: TopicAdmin = topics or FakeTopics()
    return ReconcileContext(kube=api, settings=settings or OperatorSettings(), topics=admin)


def condition(kube: FakeKube, kind: str) -> dict[str, Any]:
    return next(c for c in kube.resource["status"]["conditions"] if c["type"] == kind)


def spec(mode: str, management: str = "External", **extra: Any) -> dict[str, Any]:
    return {
        "architecture": {"mode": mode},
        "kafka": {"bootstrapServers": "k:9092", "management": management},
        "database": {"urlSecretRef": {"name": "db"}},
        **extra,
    }
