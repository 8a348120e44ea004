"""The operator's Helm chart: lint, rendering, security settings, least-privilege RBAC, values
validation, and the copies it carries (CRD, rules, dashboard) staying identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.packaging.conftest import CHART_DIR, REPO_ROOT, Renderer, by_kind, render_chart, run

# Every permission the operator holds, as (apiGroup, resource, verb). Keep in step with the
# calls the operator makes (docs/operator.md); the end-to-end test proves they suffice.
CHILD_VERBS = {"get", "list", "create", "patch", "delete"}
EXPECTED_NAMESPACED = (
    {("ocrserving.io", "ocrservings", v) for v in ("get", "list", "watch", "patch")}
    | {("ocrserving.io", "ocrservings/status", "patch")}
    | {("ocrserving.io", "ocrservings/finalizers", "update")}
    | {
        (group, resource, verb)
        for group, resource in (
            ("apps", "deployments"),
            ("", "services"),
            ("", "configmaps"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("policy", "poddisruptionbudgets"),
            ("batch", "jobs"),
            ("keda.sh", "scaledobjects"),
            ("networking.k8s.io", "networkpolicies"),
        )
        for verb in CHILD_VERBS
    }
    | {("", "pods", "get"), ("", "pods", "list")}
    | {("", "events", "create")}
    # The generated API key Secret: created blind, never read (spec.api.auth).
    | {("", "secrets", "create")}
)
EXPECTED_CLUSTER = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
# Only with a namespace list: kopf then follows those namespaces.
NAMESPACES = {("", "namespaces", "list"), ("", "namespaces", "watch")}
STRIMZI = {("kafka.strimzi.io", "kafkatopics", v) for v in ("get", "create", "patch")}


def permissions(role: dict[str, object]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in role["rules"]:  # type: ignore[attr-defined]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def cluster_roles(manifests: list[dict[str, object]]) -> dict[str, set[tuple[str, str, str]]]:
    return {m["metadata"]["name"]: permissions(m) for m in by_kind(manifests, "ClusterRole")}  # type: ignore[index]


def test_helm_lint_strict_passes(helm: Path) -> None:
    done = run([helm, "lint", CHART_DIR, "--strict"])
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(
        [
            helm,
            "lint",
            CHART_DIR,
            "--strict",
            "--set",
            "watchNamespaces={a,b}",
            "--set",
            "rbac.strimzi=true",
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "grafanaDashboard.enabled=true",
            "--set",
            "podMonitor.enabled=true",
        ]
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_default_render_is_cluster_wide_with_one_operator(render: Renderer) -> None:
    manifests = render()
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
        ]
    )
    (deployment,) = by_kind(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    (account,) = by_kind(manifests, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/ocr-serving/ocr-operator:0.1.0"
    assert container["args"] == ["run", "--standalone", "--liveness=http://0.0.0.0:8080/healthz"]
    assert container["ports"] == [{"name": "health", "containerPort": 8080, "protocol": "TCP"}]


def test_deployment_is_locked_down(render: Renderer) -> None:
    (deployment,) = by_kind(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp"}


def test_values_reach_the_operator(render: Renderer) -> None:
    manifests = render(
        "image.tag=9.9.9",
        "prometheus.url=http://prom.mon:9090",
        "logLevel=DEBUG",
        "watchNamespaces={team-a,team-b}",
        namespace="ops",
    )
    (deployment,) = by_kind(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["image"].endswith(":9.9.9")
    assert env["OCR_OPERATOR_PROMETHEUS_URL"] == "http://prom.mon:9090"
    assert "OCR_OPERATOR_KAFKA_BOOTSTRAP" not in env
    assert container["args"][-3:] == ["--namespace=team-a", "--namespace=team-b", "--verbose"]
    # Namespaced permissions only inside the watched namespaces.
    bindings = by_kind(manifests, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "ocr-operator", "namespace": "ops"}
        ]
    (cluster_binding,) = by_kind(manifests, "ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == "ocr-operator-cluster"
    assert cluster_roles(manifests)["ocr-operator-cluster"] == EXPECTED_CLUSTER | NAMESPACES


def test_image_digest_wins_over_tag(render: Renderer) -> None:
    digest = "sha256:" + "a" * 64
    (deployment,) = by_kind(render(f"image.digest={digest}", "image.tag=1.0"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/ocr-serving/ocr-operator@{digest}"


def test_rbac_is_exactly_what_the_operator_uses(render: Renderer) -> None:
    roles = cluster_roles(render())
    assert roles == {"ocr-operator": EXPECTED_NAMESPACED, "ocr-operator-cluster": EXPECTED_CLUSTER}
    roles = cluster_roles(render("rbac.strimzi=true"))
    assert roles["ocr-operator"] == EXPECTED_NAMESPACED | STRIMZI


def test_rbac_grants_nothing_dangerous(render: Renderer) -> None:
    granted = set().union(*cluster_roles(render("rbac.strimzi=true")).values())
    for group, resource, verb in granted:
        assert "*" not in (group, resource, verb)
        # Secrets are created (the generated API key), never read, listed or changed.
        assert resource != "secrets" or verb == "create"
        assert resource not in {
            "pods/exec",
            "nodes",
            "serviceaccounts/token",
            "roles",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
        }
        assert verb not in {"escalate", "bind", "impersonate", "deletecollection"}
        assert verb != "update" or resource == "ocrservings/finalizers"
    # Cluster-scoped objects are only ever read.
    assert {v for _, _, v in EXPECTED_CLUSTER} == {"list", "watch"}


def test_rbac_can_be_left_to_the_platform(render: Renderer) -> None:
    manifests = render(
        "rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=platform-sa"
    )
    assert not by_kind(manifests, "ClusterRole")
    assert not by_kind(manifests, "ServiceAccount")
    (deployment,) = by_kind(manifests, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "platform-sa"


@pytest.mark.parametrize(
    "bad",
    [
        "replicaCount=2",
        "logLevel=TRACE",
        "logLevel=WARNING",
        "securityContext.allowPrivilegeEscalation=true",
        "podSecurityContext.runAsNonRoot=false",
        "prometheus.url=ftp://prom",
        "watchNamespaces={Bad_Name}",
        "image.digest=latest",
        "kafkaBootstrap=not a host",
        "unknownKey=1",
    ],
)
def test_values_schema_rejects_bad_values(helm: Path, bad: str) -> None:
    done = run([helm, "template", "x", CHART_DIR, "--set", bad])
    assert done.returncode != 0, f"--set {bad} was accepted"
    assert "values don't meet the specifications of the schema" in done.stderr, done.stderr


def test_optional_monitoring_objects_carry_the_observability_assets(render: Renderer) -> None:
    manifests = render(
        "prometheusRule.enabled=true",
        "grafanaDashboard.enabled=true",
        "podMonitor.enabled=true",
    )
    (rule,) = by_kind(manifests, "PrometheusRule")
    source = yaml.safe_load(
        (REPO_ROOT / "observability/prometheus/ocr-serving.rules.yaml").read_text()
    )
    assert rule["spec"]["groups"] == source["groups"]
    dashboards = [m for m in by_kind(manifests, "ConfigMap") if "ocr-serving.json" in m["data"]]
    (dashboard,) = dashboards
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["ocr-serving.json"]) == json.loads(
        (REPO_ROOT / "observability/grafana/ocr-serving.json").read_text()
    )
    (monitor,) = by_kind(manifests, "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert targets == {"ocrserving", "component"}


def test_pod_monitor_selects_the_pods_the_operator_renders(render: Renderer) -> None:
    (monitor,) = by_kind(render("podMonitor.enabled=true", "watchNamespaces={ns1}"), "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ns1"]}
    wanted = monitor["spec"]["selector"]
    (expression,) = wanted["matchExpressions"]
    # The operator's golden render of a Writer stack has all three components.
    golden = REPO_ROOT / "tests" / "operator" / "golden" / "writer.yaml"
    deployments = [
        d for d in yaml.safe_load_all(golden.read_text()) if d and d["kind"] == "Deployment"
    ]
    assert len(deployments) == 3
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert wanted["matchLabels"].items() <= labels.items()
        assert labels[expression["key"]] in expression["values"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "http" in {p["name"] for p in container["ports"]}


def test_chart_crd_is_identical_to_the_repository_crd() -> None:
    repo_crd = REPO_ROOT / "crds" / "ocrserving.yaml"
    chart_crd = CHART_DIR / "crds" / "ocrserving.yaml"
    assert repo_crd.is_file(), "crds/ocrserving.yaml is missing"
    assert chart_crd.read_bytes() == repo_crd.read_bytes(), (
        "charts/ocr-operator/crds/ocrserving.yaml differs from crds/ocrserving.yaml: "
        "cp crds/ocrserving.yaml charts/ocr-operator/crds/"
    )


@pytest.mark.parametrize(
    ("copy", "source"),
    [
        ("files/ocr-serving.rules.yaml", "observability/prometheus/ocr-serving.rules.yaml"),
        ("files/ocr-serving.json", "observability/grafana/ocr-serving.json"),
    ],
)
def test_chart_copies_of_observability_assets_are_identical(copy: str, source: str) -> None:
    assert (CHART_DIR / copy).read_bytes() == (REPO_ROOT / source).read_bytes(), (
        f"cp {source} charts/ocr-operator/{copy}"
    )


def test_crd_is_rendered_with_include_crds(helm: Path) -> None:
    text = render_chart(helm, include_crds=True)
    crds = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "CustomResourceDefinition"]
    assert [c["metadata"]["name"] for c in crds] == ["ocrservings.ocrserving.io"]
    spec = crds[0]["spec"]
    assert spec["names"]["shortNames"] == ["ocrs"]
    assert [v["name"] for v in spec["versions"]] == ["v1alpha1"]
