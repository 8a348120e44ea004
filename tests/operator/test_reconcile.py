"""reconcile() against an in-memory apiserver fake: invalid specs, pause, the Writer entry
order and idempotency (topics External, so no broker is involved)."""

from __future__ import annotations

import copy
from typing import Any, cast

from ocr_operator.apply import KubeClient, Owner
from ocr_operator.model import Mode
from ocr_operator.reconcile import ReconcileContext, reconcile
from ocr_operator.render import Kind, Manifest, Phase
from ocr_operator.settings import OperatorSettings

NS, NAME, UID = "ns", "demo", "uid-1"


class FakeKube:
    """Just enough apiserver: Deployments become Ready as soon as they are applied, unless
    their name is in `unready`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.resource: dict[str, Any] = {
            "metadata": {"name": NAME, "namespace": NS, "uid": UID, "generation": 1},
            "spec": spec,
            "status": {},
        }
        self.objects: dict[tuple[Kind, str], dict[str, Any]] = {}
        self.unready: set[str] = set()
        self.applied: list[tuple[Kind, str]] = []
        self.deleted: list[tuple[Kind, str]] = []
        self.events: list[str] = []

    async def get_own(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.resource)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        merged = {**self.resource["status"], **status}
        self.resource["status"] = {k: v for k, v in merged.items() if v is not None}

    async def apply(self, manifest: Manifest, owner: Owner) -> dict[str, Any]:
        body = copy.deepcopy(manifest.body)
        body["metadata"].update(generation=1, ownerReferences=[owner.reference()])
        if manifest.kind is Kind.DEPLOYMENT:
            replicas = body["spec"].get("replicas", 1)
            ready = 0 if manifest.name in self.unready else replicas
            body["status"] = {
                "observedGeneration": 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
            }
        self.objects[manifest.key] = body
        self.applied.append(manifest.key)
        return body

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get((kind, name)))

    async def list(self, kind: Kind, namespace: str, labels: dict[str, str]) -> list[Any]:
        return [b for (k, _), b in self.objects.items() if k is kind]

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.objects.pop((kind, name), None)
        self.deleted.append((kind, name))

    async def event(self, owner: Owner, warning: bool, reason: str, message: str) -> None:
        self.events.append(reason)


def _spec(mode: str) -> dict[str, Any]:
    return {
        "image": "img",
        "architecture": {"mode": mode},
        "kafka": {"bootstrapServers": "k:9092", "management": "External"},
        "database": {"urlSecretRef": {"name": "db"}},
    }


def _context(kube: FakeKube) -> ReconcileContext:
    return ReconcileContext(kube=cast(KubeClient, kube), settings=OperatorSettings())


def _condition(kube: FakeKube, kind: str) -> dict[str, Any]:
    return next(c for c in kube.resource["status"]["conditions"] if c["type"] == kind)


def _worker_mode(kube: FakeKube) -> str:
    body = kube.objects[(Kind.DEPLOYMENT, "demo-worker")]
    env = body["spec"]["template"]["spec"]["containers"][0]["env"]
    return str(next(e["value"] for e in env if e["name"] == "OCR_MODE"))


async def test_invalid_spec_is_reported_without_retry() -> None:
    kube = FakeKube({"image": "img"})  # no kafka, no database
    outcome = await reconcile(_context(kube), NS, NAME)
    assert outcome.retry_after is None
    assert _condition(kube, "Degraded")["reason"] == "InvalidSpec"
    assert "kafka" in _condition(kube, "Degraded")["message"]
    assert kube.applied == []
    assert kube.events == ["InvalidSpec"]


async def test_paused_touches_no_child() -> None:
    kube = FakeKube({**_spec("Standard"), "paused": True})
    await reconcile(_context(kube), NS, NAME)
    assert kube.applied == []
    assert _condition(kube, "Progressing")["reason"] == "Paused"


async def test_entering_writer_waits_for_the_writer_then_switches_workers() -> None:
    kube = FakeKube(_spec("Batched"))
    await reconcile(_context(kube), NS, NAME)
    kube.resource["spec"] = _spec("Writer")
    kube.unready = {"demo-writer"}
    kube.applied.clear()
    outcome = await reconcile(_context(kube), NS, NAME)
    assert outcome.phase is Phase.WAITING_FOR_WRITER
    assert outcome.retry_after is not None
    assert _worker_mode(kube) == "batched"
    writer_at = kube.applied.index((Kind.DEPLOYMENT, "demo-writer"))
    assert writer_at < kube.applied.index((Kind.DEPLOYMENT, "demo-worker"))
    assert _condition(kube, "Progressing")["reason"] == "WaitingForWriter"

    kube.unready = set()
    await reconcile(_context(kube), NS, NAME)  # the writer is Ready now (observed next pass)
    outcome = await reconcile(_context(kube), NS, NAME)
    assert (outcome.active_mode, outcome.phase, outcome.ready) == (Mode.WRITER, Phase.STEADY, True)
    assert _worker_mode(kube) == "writer"
    assert kube.resource["status"]["components"]["writer"] == {"desired": 1, "ready": 1}


async def test_steady_reconcile_is_idempotent() -> None:
    kube = FakeKube(_spec("Standard"))
    await reconcile(_context(kube), NS, NAME)
    first = copy.deepcopy(kube.objects)
    status = copy.deepcopy(kube.resource["status"])
    outcome = await reconcile(_context(kube), NS, NAME)
    assert outcome.ready
    assert kube.objects == first
    assert kube.deleted == []
    assert kube.resource["status"] == status
    assert kube.events == ["ModeChanged"]
