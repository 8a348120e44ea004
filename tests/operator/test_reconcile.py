"""reconcile() against an in-memory apiserver fake: invalid specs, pause, the Writer entry
order and idempotency (topics External, so no broker is involved)."""

from __future__ import annotations

import copy

from ocr_operator.model import Mode
from ocr_operator.reconcile import reconcile
from ocr_operator.render import Kind, Phase
from tests.operator._fakes import NAME, NS, FakeKube
from tests.operator._fakes import condition as _condition
from tests.operator._fakes import context as _context
from tests.operator._fakes import spec as _spec


def _worker_mode(kube: FakeKube) -> str:
    body = kube.objects[(Kind.DEPLOYMENT, "demo-worker")]
    env = body["spec"]["template"]["spec"]["containers"][0]["env"]
    return str(next(e["value"] for e in env if e["name"] == "OCR_MODE"))


async def test_invalid_spec_is_reported_without_retry() -> None:
    kube = FakeKube({"engine": {"kind": "onnx"}})  # no kafka, no database
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
    writer = kube.resource["status"]["components"]["writer"]
    assert (writer["desired"], writer["ready"], writer["available"]) == (1, 1, 1)


async def test_steady_reconcile_is_idempotent() -> None:
    kube = FakeKube(_spec("Standard"))
    await reconcile(_context(kube), NS, NAME)  # creates the migration Job
    await reconcile(_context(kube), NS, NAME)  # it completed: the workloads follow
    first = copy.deepcopy(kube.objects)
    status = copy.deepcopy(kube.resource["status"])
    outcome = await reconcile(_context(kube), NS, NAME)
    assert outcome.ready
    assert kube.objects == first
    assert kube.deleted == []
    assert kube.resource["status"] == status
    assert kube.events == ["ModeChanged"]
