"""Render golden files per mode, plus the properties the golden files must not lose.

Regenerate after an intended change: UPDATE_GOLDEN=1 pytest tests/operator/test_render.py
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.render import Instance, Kind, Manifest, Observed, plan_transition, render
from tests.operator._examples import EXAMPLES, ROOT, example_resource, example_spec

WRITER = frozenset({Component.WRITER})
GOLDEN = ROOT / "tests" / "operator" / "golden"
INSTANCE = Instance("demo", "ocr")

STEADY = {
    Mode.STANDARD: Observed(worker_mode=Mode.STANDARD),
    Mode.BATCHED: Observed(worker_mode=Mode.BATCHED),
    Mode.WRITER: Observed(worker_mode=Mode.WRITER, present=WRITER, ready=WRITER),
}


def _steady(spec: OCRServingSpec) -> list[Manifest]:
    mode = spec.architecture.mode
    return render(spec, INSTANCE, plan_transition(mode, STEADY[mode]))


def _by_key(manifests: list[Manifest]) -> dict[tuple[Kind, str], dict[str, Any]]:
    return {m.key: m.body for m in manifests}


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("example", EXAMPLES)
def test_render_matches_golden(example: str) -> None:
    text = yaml.safe_dump_all([m.body for m in _steady(example_spec(example))], sort_keys=True)
    path = GOLDEN / f"{example}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text


def test_writer_exists_only_in_writer_mode() -> None:
    for example in EXAMPLES:
        spec = example_spec(example)
        names = {m.name for m in _steady(spec)}
        assert ("demo-writer" in names) == (spec.architecture.mode is Mode.WRITER)


def test_entering_writer_renders_the_writer_but_keeps_workers_off_the_results_topic() -> None:
    spec = example_spec("writer")
    manifests = _by_key(
        render(spec, INSTANCE, plan_transition(Mode.WRITER, Observed(worker_mode=Mode.BATCHED)))
    )
    assert _env(manifests[(Kind.DEPLOYMENT, "demo-writer")])["OCR_MODE"] == "writer"
    assert _env(manifests[(Kind.DEPLOYMENT, "demo-worker")])["OCR_MODE"] == "batched"


def test_leaving_writer_keeps_the_draining_writer_on_its_template() -> None:
    spec = example_spec("writer")
    steady = _by_key(_steady(spec))[(Kind.DEPLOYMENT, "demo-writer")]
    leaving = plan_transition(Mode.BATCHED, Observed(worker_mode=Mode.BATCHED, present=WRITER))
    draining = _by_key(render(spec, INSTANCE, leaving))[(Kind.DEPLOYMENT, "demo-writer")]
    # An unchanged template: the writer that drains the results topic is not restarted.
    assert draining["spec"]["template"] == steady["spec"]["template"]


def test_gpu_worker_requests_gpus_and_autoscaled_deployments_leave_replicas_to_the_hpa() -> None:
    manifests = _by_key(_steady(example_spec("batched")))
    worker = manifests[(Kind.DEPLOYMENT, "demo-worker")]
    resources = worker["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    assert "replicas" not in worker["spec"]
    hpa = manifests[(Kind.HORIZONTAL_POD_AUTOSCALER, "demo-worker")]
    external = hpa["spec"]["metrics"][0]["external"]
    assert external["target"] == {"type": "AverageValue", "averageValue": "50"}
    assert external["metric"]["selector"]["matchLabels"]["consumergroup"] == "ocr-workers"
    api = manifests[(Kind.HORIZONTAL_POD_AUTOSCALER, "demo-api")]
    assert api["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_every_pod_requests_cpu_and_memory_and_a_limit_alone_is_kept() -> None:
    # The standard example names no writer resources; entering Writer must not add a
    # BestEffort pod that busy workers starve of CPU.
    raw = example_resource("standard")["spec"]
    raw["worker"]["resources"] = {"limits": {"cpu": "2"}}
    spec = OCRServingSpec.model_validate(raw)
    plan = plan_transition(Mode.WRITER, Observed(worker_mode=Mode.STANDARD))
    manifests = _by_key(render(spec, INSTANCE, plan))
    requests = {
        component: manifests[(Kind.DEPLOYMENT, f"demo-{component.value}")]["spec"]["template"][
            "spec"
        ]["containers"][0]["resources"]["requests"]
        for component in Component
    }
    assert requests[Component.WRITER] == {"cpu": "100m", "memory": "256Mi"}
    assert requests[Component.API] == {"cpu": "100m", "memory": "256Mi"}
    # A CPU limit alone: Kubernetes requests the limit; a default request could exceed it.
    assert requests[Component.WORKER] == {"memory": "768Mi"}


def test_pods_drain_probe_and_run_unprivileged() -> None:
    spec = example_spec("standard")
    for component in Component:
        if component is Component.WRITER:
            continue
        pod = _by_key(_steady(spec))[(Kind.DEPLOYMENT, f"demo-{component.value}")]
        pod_spec = pod["spec"]["template"]["spec"]
        container = pod_spec["containers"][0]
        assert container["args"] == [component.value]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert "preStop" in container["lifecycle"]
        assert pod_spec["terminationGracePeriodSeconds"] > spec.drain_seconds
        assert pod_spec["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_strimzi_management_renders_kafka_topics() -> None:
    raw = example_spec("writer").model_dump(by_alias=True)
    raw["kafka"].update(management="Strimzi", strimziCluster="events")
    manifests = _steady(OCRServingSpec.model_validate(raw))
    topics = [m.body for m in manifests if m.kind is Kind.KAFKA_TOPIC]
    assert sorted(t["spec"]["topicName"] for t in topics) == [
        "ocr-jobs",
        "ocr-jobs-dlq",
        "ocr-results",
    ]
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics} == {"events"}


def test_config_change_rolls_pods() -> None:
    spec = example_spec("standard")
    raw = spec.model_dump(by_alias=True)
    raw["batching"]["maxSize"] = 32
    changed = OCRServingSpec.model_validate(raw)

    def config_hash(s: OCRServingSpec) -> str:
        body = _by_key(_steady(s))[(Kind.DEPLOYMENT, "demo-worker")]
        return str(body["spec"]["template"]["metadata"]["annotations"]["ocrserving.io/config-hash"])

    assert config_hash(spec) != config_hash(changed)


@pytest.mark.parametrize("source", list(Mode))
@pytest.mark.parametrize("target", list(Mode))
def test_a_mode_switch_leaves_the_api_pod_template_unchanged(source: Mode, target: Mode) -> None:
    """The API reads no mode: its pods must not roll when the workers switch."""
    raw = example_resource("standard")["spec"]

    def api_template(mode: Mode) -> dict[str, Any]:
        spec = OCRServingSpec.model_validate({**raw, "architecture": {"mode": mode.value}})
        deployments = _by_key(_steady(spec))
        return dict(deployments[(Kind.DEPLOYMENT, "demo-api")]["spec"]["template"])

    before, after = api_template(source), api_template(target)
    assert "ocrserving.io/mode" not in before["metadata"]["annotations"]
    assert before == after
