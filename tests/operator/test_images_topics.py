"""Images that exist and fit the engine; topics owned by the operator (render and the
Strimzi step, against fakes)."""

from __future__ import annotations

from typing import Any

import pytest

from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.reconcile import reconcile
from ocr_operator.render import (
    Instance,
    Kind,
    Observed,
    StackDefaults,
    component_image,
    config_data,
    migration_job,
    plan_transition,
    render,
)
from ocr_operator.topics_step import strimzi_topic_state
from tests.operator._fakes import NAME, NS, FakeKube, condition, context, spec

LOCAL = StackDefaults(repository="localhost/ocr-runtime", tag="dev")


def _spec(**extra: Any) -> OCRServingSpec:
    return OCRServingSpec.model_validate(spec("Standard", **extra))


@pytest.mark.parametrize(
    ("engine", "worker"),
    [
        ({"kind": "onnx", "device": "cpu"}, "localhost/ocr-runtime:dev-onnx"),
        ({"kind": "onnx", "device": "gpu"}, "localhost/ocr-runtime:dev-onnx-gpu"),
        ({"kind": "paddle", "device": "cpu"}, "localhost/ocr-runtime:dev-paddle"),
        ({"kind": "paddle", "device": "gpu"}, "localhost/ocr-runtime:dev-paddle-gpu"),
        ({"kind": "noop", "device": "cpu"}, "localhost/ocr-runtime:dev-onnx"),
    ],
)
def test_worker_image_follows_the_engine_and_the_rest_run_the_cpu_image(
    engine: dict[str, str], worker: str
) -> None:
    spec_ = _spec(engine=engine)
    assert component_image(spec_, Component.WORKER, LOCAL) == worker
    assert component_image(spec_, Component.API, LOCAL) == "localhost/ocr-runtime:dev-onnx"
    assert component_image(spec_, Component.WRITER, LOCAL) == "localhost/ocr-runtime:dev-onnx"


def test_spec_image_and_component_overrides_win() -> None:
    spec_ = _spec(
        image={"repository": "registry.example/ocr", "tag": "1.2.3"},
        engine={"kind": "paddle", "device": "gpu"},
        api={"image": "registry.example/custom-api:7"},
    )
    worker = component_image(spec_, Component.WORKER, LOCAL)
    assert worker == "registry.example/ocr:1.2.3-paddle-gpu"
    assert component_image(spec_, Component.API, LOCAL) == "registry.example/custom-api:7"
    assert component_image(spec_, Component.WRITER, LOCAL) == "registry.example/ocr:1.2.3-onnx"
    job = migration_job(spec_, Instance("demo", "ns"), LOCAL)
    assert job.body["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example/custom-api:7"
    )


def test_default_placement_applies_only_where_a_component_sets_none() -> None:
    defaults = StackDefaults(
        node_selector={"pool": "serving"},
        tolerations=[{"key": "pool", "operator": "Exists", "effect": "NoSchedule"}],
    )
    spec_ = _spec(worker={"nodeSelector": {"gpu": "yes"}})
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    pods = {
        m.name: m.body["spec"]["template"]["spec"]
        for m in render(spec_, Instance("demo", "ns"), plan, defaults)
        if m.kind is Kind.DEPLOYMENT
    }
    assert pods["demo-api"]["nodeSelector"] == {"pool": "serving"}
    assert pods["demo-api"]["tolerations"][0]["key"] == "pool"
    assert pods["demo-worker"]["nodeSelector"] == {"gpu": "yes"}
    assert "tolerations" not in pods["demo-worker"]


def test_the_runtime_never_creates_topics_and_gets_the_spec_topic_layout() -> None:
    data = config_data(_spec(kafka={"bootstrapServers": "k:9092", "partitions": 12}))
    assert data["OCR_KAFKA_CREATE_TOPICS"] == "false"
    assert data["OCR_KAFKA_PARTITIONS"] == "12"
    assert data["OCR_KAFKA_REPLICATION"] == "1"


def _strimzi(deletion: str | None = None) -> dict[str, Any]:
    topics: dict[str, Any] = {} if deletion is None else {"deletion": deletion}
    return spec(
        "Standard",
        management="Strimzi",
        kafka={
            "bootstrapServers": "k:9092",
            "management": "Strimzi",
            "strimziCluster": "main",
            "topics": topics,
        },
    )


async def test_strimzi_topics_are_retained_by_default_and_gate_ready() -> None:
    kube = FakeKube(_strimzi())
    for _ in range(2):
        await reconcile(context(kube), NS, NAME)
    topics = [b for (k, _), b in kube.objects.items() if k is Kind.KAFKA_TOPIC]
    assert topics
    assert all("ownerReferences" not in t["metadata"] for t in topics)
    # Strimzi has not reported on them: not Ready, and the stack waits.
    topics_ready = condition(kube, "TopicsReady")
    assert (topics_ready["status"], topics_ready["reason"]) == ("False", "WaitingForTopics")
    assert condition(kube, "Ready")["reason"] == "WaitingForTopics"

    for topic in topics:
        topic["status"] = {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    outcome = await reconcile(context(kube), NS, NAME)
    assert outcome.ready
    assert condition(kube, "TopicsReady")["status"] == "True"


async def test_strimzi_topics_with_deletion_delete_are_owned() -> None:
    kube = FakeKube(_strimzi("Delete"))
    await reconcile(context(kube), NS, NAME)
    topics = [b for (k, _), b in kube.objects.items() if k is Kind.KAFKA_TOPIC]
    assert topics
    assert all(t["metadata"]["ownerReferences"][0]["name"] == NAME for t in topics)


def test_strimzi_topic_state_reads_ready_and_refusals() -> None:
    assert strimzi_topic_state({"metadata": {"generation": 2}, "status": {}}) is not None
    refused = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "NotSupported", "message": "x"}
            ],
        },
    }
    assert strimzi_topic_state(refused) == "NotSupported: x"
