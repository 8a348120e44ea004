"""End to end on the local control plane (kwok pods), the real Kafka broker and the real
Prometheus: the operator and its advisor run under KopfRunner, Prometheus scrapes an exporter
that the test drives, and the stack follows (or, under Recommend and Manual, does not)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from ocr_operator.advisor.handlers import register_advisor
from ocr_operator.advisor.policy import APPROVE_ANNOTATION, PIN_ANNOTATION
from ocr_operator.handlers import register
from ocr_operator.settings import OperatorSettings
from tests.advisor.exporter import Exporter
from tests.operator._cluster import (
    apply_documents,
    condition,
    container_env,
    get,
    install_crds,
    kubectl,
)
from tests.operator._cluster import wait_for as _wait_for
from tests.operator._examples import ROOT, example_documents

pytestmark = pytest.mark.e2e

# Short windows so a whole cycle takes about a minute (docs/advisor.md, "Test timings").
FAST_ADVISOR = {
    "intervalSeconds": 1,
    "windowSeconds": 3,
    "recoveryWindowSeconds": 3,
    "cooldownSeconds": 4,
    "minSamples": 2,
    "rateWindowSeconds": 4,
    "queryTimeoutSeconds": 5,
}
# Exporter settings that make each rule hold (and no other). The workers consume 5 jobs/s, so
# a lag growing by 25/s is behind (>= 30 s to drain) within seconds and gains 300 s per minute.
SATURATED = {"gpu_percent": 90.0, "lag_slope": 25.0, "consume_rate": 5.0, "db_write_latency": 0.02}
DOWNSTREAM_BOUND = {
    "gpu_percent": 40.0,
    "lag_slope": 25.0,
    "consume_rate": 5.0,
    "db_write_latency": 0.7,
}
DOWNSTREAM_RECOVERED = {
    "gpu_percent": 40.0,
    "lag_slope": -200.0,
    "consume_rate": 5.0,
    "db_write_latency": 0.05,
}
IDLE = {"gpu_percent": 5.0, "lag": 0.0, "lag_slope": 0.0, "consume_rate": 5.0,
        "db_write_latency": 0.02}  # fmt: skip
TIMEOUT_S = 300.0  # kwok gets slow when other suites share the cluster


def wait_for(probe: Callable[[], Any], what: str) -> Any:
    return _wait_for(probe, what, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-advisor-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(namespace: str, kafka_bootstrap: str, prometheus_url: str) -> Iterator[KopfRunner]:
    settings = OperatorSettings(
        kafka_bootstrap=kafka_bootstrap,
        prometheus_url=prometheus_url,
        resync_seconds=2,
        wait_seconds=1,
        error_backoff_seconds=2,
    )
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    register_advisor(registry, settings)
    with KopfRunner(["run", "--standalone", "--namespace", namespace], registry=registry,
                    timeout=60) as runner:  # fmt: skip
        yield runner
        kubectl("delete", "ocrs", "--all", "-n", namespace, "--wait=true", "--timeout=60s")
    assert runner.exception is None


@pytest.fixture
def exporter(prometheus_targets: Callable[..., None]) -> Iterator[Callable[[str, str], Exporter]]:
    """`exporter(namespace, name)`: a driven exporter scraped as that stack's pods."""
    with Exporter() as running:

        def scrape_as(namespace: str, name: str) -> Exporter:
            running.set(jobs_topic=f"{namespace}-{name}-jobs")  # the stack's consumer lag
            prometheus_targets([running.address], labels={"namespace": namespace,
                                                          "ocrserving": name})  # fmt: skip
            return running

        yield scrape_as


def create_stack(namespace: str, name: str, policy: str) -> None:
    documents = example_documents("standard")
    resource = copy.deepcopy(next(d for d in documents if d["kind"] == "OCRServing"))
    resource["metadata"]["name"] = name
    spec = resource["spec"]
    spec["architecture"] = {"mode": "Standard", "policy": policy}
    spec["api"]["replicas"] = 1
    spec["worker"]["replicas"] = 1
    spec["kafka"]["topics"] = {
        "jobs": f"{namespace}-{name}-jobs",
        "results": f"{namespace}-{name}-results",
        "deadLetter": f"{namespace}-{name}-dlq",
    }
    spec["advisor"] = dict(FAST_ADVISOR)
    apply_documents(namespace, [d for d in documents if d["kind"] == "Secret"] + [resource])
    wait_for(lambda: ready_in(namespace, name, "Standard"), f"{name} Ready in Standard")


def ready_in(namespace: str, name: str, mode: str) -> dict[str, Any]:
    """The resource once Ready in `mode`; otherwise raises with what the advisor and the
    operator say (wait_for keeps the last one for its failure message)."""
    resource = get("ocrs", name, namespace)
    status = (resource or {}).get("status") or {}
    if status.get("activeMode") == mode and condition(resource, "Ready").get("status") == "True":
        assert resource is not None
        return resource
    advisor = status.get("advisor") or {}
    summary = {
        "activeMode": status.get("activeMode"),
        "verdict": advisor.get("verdict"),
        "message": advisor.get("message"),
        "problems": advisor.get("problems"),
        "evidence": {k: advisor.get(k) for k in ("gpuUtilization", "lag", "lagTrend",
                                                 "timeToDrainSeconds", "dbWriteP95Seconds")},
        "conditions": {c["type"]: (c["status"], c["reason"], c.get("message", "")[:120])
                       for c in status.get("conditions") or []},
    }  # fmt: skip
    raise AssertionError(f"not Ready in {mode}: {summary}")


def children_are(namespace: str, name: str, expected: dict[str, str]) -> bool:
    return children(namespace, name) == expected


def children(namespace: str, name: str) -> dict[str, str]:
    """Deployments of the stack -> their OCR_MODE ("-" for none: the API reads no mode, so
    a switch must not touch it)."""
    out = kubectl("get", "deployments", "-n", namespace, "-l",
                  f"app.kubernetes.io/instance={name}", "-o", "json")  # fmt: skip
    return {
        item["metadata"]["name"]: str(container_env(item).get("OCR_MODE", "-"))
        for item in json.loads(out)["items"]
    }


def latest_evaluation(namespace: str, name: str) -> str | None:
    resource = get("ocrs", name, namespace) or {}
    window = (resource.get("status", {}).get("advisor") or {}).get("window") or {}
    return (window.get("latest") or {}).get("at")


def evaluations(namespace: str, name: str, count: int) -> dict[str, Any]:
    """Waits until the advisor evaluated `count` more times; returns the resource then."""
    seen = {latest_evaluation(namespace, name)}

    def enough() -> bool:
        seen.add(latest_evaluation(namespace, name))
        return len(seen) > count

    wait_for(enough, f"{count} more evaluations of {name}")
    resource = get("ocrs", name, namespace)
    assert resource is not None
    return resource


def test_auto_follows_the_metrics_up_the_ladder_and_back(
    operator: KopfRunner, namespace: str, exporter: Callable[[str, str], Exporter]
) -> None:
    create_stack(namespace, "auto", "Auto")
    driven = exporter(namespace, "auto")
    steps = [
        (SATURATED, "Batched", {"auto-api": "-", "auto-worker": "batched"}),
        (DOWNSTREAM_BOUND, "Writer",
         {"auto-api": "-", "auto-worker": "writer", "auto-writer": "writer"}),
        (DOWNSTREAM_RECOVERED, "Batched", {"auto-api": "-", "auto-worker": "batched"}),
        (IDLE, "Standard", {"auto-api": "-", "auto-worker": "standard"}),
    ]  # fmt: skip
    for load, mode, expected_children in steps:
        driven.set(**load)
        wait_for(partial(ready_in, namespace, "auto", mode), f"auto Ready in {mode}")
        wait_for(partial(children_are, namespace, "auto", expected_children),
                 f"children of {mode}: {expected_children}")  # fmt: skip

    status = get("ocrs", "auto", namespace)["status"]  # type: ignore[index]
    moves = [(t["from"], t["to"], t["reason"].split(" ")[0]) for t in status["transitions"]]
    assert moves == [
        ("Standard", "Batched", "GpuSaturated"),
        ("Batched", "Writer", "DownstreamBound"),
        ("Writer", "Batched", "DownstreamRecovered"),
        ("Batched", "Standard", "GpuIdle"),
    ]
    assert [t["rule"] for t in status["transitions"]] == [m[2] for m in moves]
    for transition in status["transitions"]:  # each check with its value and how long it held
        assert transition["signals"], transition
        assert all(s["heldSeconds"] >= 0 and "value" in s for s in transition["signals"])
    assert condition({"status": status}, "AdvisorAvailable")["status"] == "True"
    events = kubectl("get", "events", "-n", namespace, "--field-selector",
                     "involvedObject.name=auto,reason=TransitionApplied", "-o", "json")  # fmt: skip
    messages = [item["message"] for item in json.loads(events)["items"]]
    assert len(messages) == 4
    # What `kubectl describe` shows: the move, the rule, each signal and how long it held.
    assert all(" -> " in m and " for " in m and "rule held" in m for m in messages), messages
    row = kubectl("get", "ocrs", "auto", "-n", namespace, "--no-headers").split()
    assert row[1:3] == ["Standard", "Standard"]  # spec untouched, active mode back
    assert "5" in row  # the GPU column shows the exporter's 5 %


def test_recommend_only_recommends_until_approved(
    operator: KopfRunner, namespace: str, exporter: Callable[[str, str], Exporter]
) -> None:
    create_stack(namespace, "rec", "Recommend")
    exporter(namespace, "rec").set(**SATURATED)

    def recommended() -> dict[str, Any] | None:
        resource = get("ocrs", "rec", namespace)
        return resource if (resource or {}).get("status", {}).get("recommendation") else None

    resource = wait_for(recommended, "a recommendation")
    recommendation = resource["status"]["recommendation"]
    assert recommendation["mode"] == "Batched"
    assert recommendation["evidence"]["gpuUtilization"] == pytest.approx(90.0)
    assert condition(resource, "TransitionRecommended")["reason"] == "GpuSaturated"
    resource = evaluations(namespace, "rec", 3)
    assert resource["status"]["activeMode"] == "Standard"
    assert resource["status"].get("transitions", []) == []
    assert children(namespace, "rec") == {"rec-api": "-", "rec-worker": "standard"}

    kubectl("annotate", "ocrs", "rec", "-n", namespace, f"{APPROVE_ANNOTATION}=Batched")
    resource = wait_for(lambda: ready_in(namespace, "rec", "Batched"), "rec Ready in Batched")
    assert resource["spec"]["architecture"]["mode"] == "Standard"  # never written
    assert resource["status"]["advisor"]["consumedApproval"] == "Batched"
    assert [t["to"] for t in resource["status"]["transitions"]] == ["Batched"]
    # Ready may still be the Standard rollout's for a moment after activeMode moved.
    expected = {"rec-api": "-", "rec-worker": "batched"}
    wait_for(lambda: children(namespace, "rec") == expected, f"children of Batched: {expected}")


def test_manual_reports_only_and_the_pin_holds_auto(
    operator: KopfRunner, namespace: str, exporter: Callable[[str, str], Exporter]
) -> None:
    create_stack(namespace, "man", "Manual")
    exporter(namespace, "man").set(**SATURATED)

    def would_move() -> dict[str, Any] | None:
        resource = get("ocrs", "man", namespace)
        reason = condition(resource, "TransitionRecommended").get("reason")
        return resource if reason == "ManualPolicy" else None

    resource = wait_for(would_move, "the rule to hold under Manual")
    resource = evaluations(namespace, "man", 3)
    status = resource["status"]
    assert status["activeMode"] == "Standard"
    assert "recommendation" not in status
    assert status["advisor"]["gpuUtilization"] == pytest.approx(90.0)
    assert children(namespace, "man") == {"man-api": "-", "man-worker": "standard"}

    kubectl("annotate", "ocrs", "man", "-n", namespace, f"{PIN_ANNOTATION}=true")
    kubectl("patch", "ocrs", "man", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"architecture":{"policy":"Auto"}}}')  # fmt: skip

    def pinned() -> dict[str, Any] | None:
        resource = get("ocrs", "man", namespace)
        return resource if condition(resource, "TransitionRecommended").get("reason") == (
            "Pinned") else None  # fmt: skip

    wait_for(pinned, "the pin to hold the move")
    resource = evaluations(namespace, "man", 3)
    assert resource["status"]["activeMode"] == "Standard"
    kubectl("annotate", "ocrs", "man", "-n", namespace, f"{PIN_ANNOTATION}-")
    wait_for(lambda: ready_in(namespace, "man", "Batched"), "man Ready in Batched once unpinned")
