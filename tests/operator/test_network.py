"""NetworkPolicies (spec.networkPolicy): rendered by default, per component, with the ports
the spec names; the apiserver accepts them. The local real node's bridge CNI does not enforce
NetworkPolicy, so what a refused connection looks like is not tested here."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.reconcile import reconcile
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from tests.operator._cluster import kubectl
from tests.operator._examples import example_spec
from tests.operator._fakes import NAME, NS, FakeKube
from tests.operator._fakes import context as _context
from tests.operator._fakes import spec as _spec

INSTANCE = Instance(NAME, NS)


def _policies(spec: OCRServingSpec, mode: Mode | None = None) -> dict[str, dict[str, Any]]:
    mode = mode or spec.architecture.mode
    writer = mode is Mode.WRITER
    writers = frozenset({Component.WRITER}) if writer else frozenset()
    observed = Observed(worker_mode=mode, present=writers, ready=writers)
    return {
        m.name: m.body
        for m in render(spec, INSTANCE, plan_transition(mode, observed))
        if m.kind is Kind.NETWORK_POLICY
    }


def _model(**extra: Any) -> OCRServingSpec:
    return OCRServingSpec.model_validate(
        _spec("Standard", **extra) | {"kafka": {"bootstrapServers": "a:9092,b:9093"}}
    )


def _ports(rules: list[dict[str, Any]]) -> set[tuple[int, str]]:
    return {(p["port"], p["protocol"]) for rule in rules for p in rule.get("ports", [])}


def test_every_component_and_the_migration_get_a_policy_by_default() -> None:
    policies = _policies(_model(redis={"urlSecretRef": {"name": "r"}}))
    assert set(policies) == {f"{NAME}-api", f"{NAME}-worker", f"{NAME}-migrate"}
    for body in policies.values():
        assert body["spec"]["policyTypes"] == ["Ingress", "Egress"]
    api = policies[f"{NAME}-api"]["spec"]
    assert api["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    # API ingress: its port only, from anywhere.
    assert api["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
    dns = {(53, "UDP"), (53, "TCP")}
    assert _ports(api["egress"]) == dns | {(3306, "TCP"), (9092, "TCP"), (9093, "TCP")} | {
        (6379, "TCP")
    }
    # Egress rules name ports, never a peer that would open everything.
    assert all("to" not in rule for rule in api["egress"])


def test_workers_take_probe_and_metrics_only_from_the_monitoring_namespace() -> None:
    worker = _policies(_model())[f"{NAME}-worker"]["spec"]
    (rule,) = worker["ingress"]
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    # No Redis for workers, whatever the spec: only the API uses it.
    assert (6379, "TCP") not in _ports(worker["egress"])


def test_the_migration_reaches_only_the_database_and_dns() -> None:
    migrate = _policies(_model())[f"{NAME}-migrate"]["spec"]
    assert migrate["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "migrate"
    assert migrate["ingress"] == []
    assert _ports(migrate["egress"]) == {(53, "UDP"), (53, "TCP"), (3306, "TCP")}


def test_writer_mode_adds_the_writers_policy() -> None:
    assert "demo-writer" in _policies(example_spec("writer"))


def test_settings_reach_the_policies() -> None:
    spec = _model(
        httpPort=9000,
        networkPolicy={
            "monitoringNamespaceSelector": {"team": "observability"},
            "monitoringPodSelector": {"app": "prometheus"},
            "apiIngressFrom": [{"namespaceSelector": {"matchLabels": {"ingress": "yes"}}}],
            "databasePort": 5432,
            "kafkaPorts": [9094],
            "extraEgress": [{"ports": [{"port": 4317, "protocol": "TCP"}]}],
        },
    )
    policies = _policies(spec)
    api = policies[f"{NAME}-api"]["spec"]
    assert api["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"ingress": "yes"}}}]
    assert {(5432, "TCP"), (9094, "TCP"), (4317, "TCP")} <= _ports(api["egress"])
    assert (3306, "TCP") not in _ports(api["egress"])
    peer = policies[f"{NAME}-worker"]["spec"]["ingress"][0]["from"][0]
    assert peer == {
        "namespaceSelector": {"matchLabels": {"team": "observability"}},
        "podSelector": {"matchLabels": {"app": "prometheus"}},
    }
    assert policies[f"{NAME}-worker"]["spec"]["ingress"][0]["ports"][0]["port"] == 9000


async def test_opting_out_renders_none_and_removes_existing_ones() -> None:
    kube = FakeKube(_spec("Standard"))
    await reconcile(_context(kube), NS, NAME)
    await reconcile(_context(kube), NS, NAME)
    assert (Kind.NETWORK_POLICY, f"{NAME}-migrate") in kube.objects
    # Applied before the migration Job, whose pod needs its egress.
    applied = kube.applied
    assert applied.index((Kind.NETWORK_POLICY, f"{NAME}-migrate")) < applied.index(
        next(key for key in applied if key[0] is Kind.JOB)
    )
    kube.resource["spec"] = _spec("Standard", networkPolicy={"enabled": False})
    await reconcile(_context(kube), NS, NAME)
    assert not any(kind is Kind.NETWORK_POLICY for kind, _ in kube.objects)
    assert _policies(OCRServingSpec.model_validate(kube.resource["spec"])) == {}


@pytest.mark.e2e
def test_the_apiserver_accepts_the_rendered_policies(kubeconfig: Path) -> None:
    namespace = f"ocr-netpol-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        spec = _model(
            redis={"urlSecretRef": {"name": "r"}},
            networkPolicy={
                "apiIngressFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
                "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}],
            },
        )
        for name, body in _policies(spec, Mode.WRITER).items():
            body["metadata"]["namespace"] = namespace
            out = kubectl(
                "apply", "--server-side", "--dry-run=server", "-n", namespace, "-o", "json",
                "-f", "-", stdin=json.dumps(body), check=False,
            )  # fmt: skip
            assert out.lstrip().startswith("{"), (name, out)
            assert json.loads(out)["spec"]["podSelector"] == body["spec"]["podSelector"]
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
