"""The operator's Helm chart: lint, rendering, security settings, least-privilege RBAC, values
validation, and the copies it carries (CRD, rules, dashboard) staying identical."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocr_operator.settings import OperatorSettings
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
            ("keda.sh", "triggerauthentications"),
            ("networking.k8s.io", "networkpolicies"),
        )
        for verb in CHILD_VERBS
    }
    # Watched: a finished rollout or migration wakes its stack (OCR_OPERATOR_WATCH_CHILDREN).
    | {("apps", "deployments", "watch"), ("batch", "jobs", "watch")}
    | {("", "pods", "get"), ("", "pods", "list")}
    | {("", "events", "create")}
    # The generated API key Secret: created blind, never read (spec.api.auth).
    | {("", "secrets", "create")}
)
EXPECTED_CLUSTER = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
# Only with a namespace list (the default: its own): kopf then follows those namespaces.
NAMESPACES = {("", "namespaces", "list"), ("", "namespaces", "watch")}
# Leader election, in the release's namespace only: the one Lease.
LEASE = {("coordination.k8s.io", "leases", v) for v in ("create", "get", "update")}
STRIMZI = {
    ("kafka.strimzi.io", resource, verb)
    for resource in ("kafkatopics", "kafkausers")
    for verb in ("get", "create", "patch")
}


def permissions(role: dict[str, object]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in role["rules"]:  # type: ignore[attr-defined]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def cluster_roles(manifests: list[dict[str, object]]) -> dict[str, set[tuple[str, str, str]]]:
    return {m["metadata"]["name"]: permissions(m) for m in by_kind(manifests, "ClusterRole")}


def roles(manifests: list[dict[str, Any]]) -> dict[str, set[tuple[str, str, str]]]:
    return {m["metadata"]["name"]: permissions(m) for m in by_kind(manifests, "Role")}


def role_binding_namespaces(manifests: list[dict[str, Any]], role_kind: str) -> list[str]:
    bindings = by_kind(manifests, "RoleBinding")
    return sorted(b["metadata"]["namespace"] for b in bindings if b["roleRef"]["kind"] == role_kind)


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


def test_default_render_is_a_namespaced_ha_operator_with_metrics(render: Renderer) -> None:
    manifests = render()
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "RoleBinding",  # the operator's permissions, in its own namespace only
            "Role",  # leader election
            "RoleBinding",
            "Deployment",
            "PodDisruptionBudget",
        ]
    )
    assert role_binding_namespaces(manifests, "ClusterRole") == ["ocr-system"]
    (deployment,) = by_kind(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    (account,) = by_kind(manifests, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/ocr-serving/ocr-operator:0.1.0"
    assert container["args"] == [
        "run",
        "--standalone",
        "--http=0.0.0.0:8080",
        "--log-format=json",
        "--leader-elect",
        "--lease-namespace=ocr-system",
        "--lease-name=ocr-operator",
        "--namespace=ocr-system",
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    env = {e["name"]: e for e in container["env"]}
    assert env["OCR_OPERATOR_IDENTITY"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["OCR_OPERATOR_LEASE_DURATION_SECONDS"]["value"] == "15"
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    (budget,) = by_kind(manifests, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_cluster_wide_is_an_explicit_choice(render: Renderer) -> None:
    manifests = render("clusterWide=true")
    (deployment,) = by_kind(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert not [a for a in container["args"] if a.startswith("--namespace")]
    assert role_binding_namespaces(manifests, "ClusterRole") == []
    names = sorted(b["roleRef"]["name"] for b in by_kind(manifests, "ClusterRoleBinding"))
    assert names == ["ocr-operator", "ocr-operator-cluster"]
    assert cluster_roles(manifests)["ocr-operator-cluster"] == EXPECTED_CLUSTER


def test_a_single_operator_without_leader_election(render: Renderer) -> None:
    manifests = render("leaderElection.enabled=false", "replicaCount=1")
    (deployment,) = by_kind(manifests, "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--leader-elect" not in container["args"]
    assert not by_kind(manifests, "Role")
    assert not by_kind(manifests, "PodDisruptionBudget")  # it would block every drain


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
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
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
    assert "OCR_OPERATOR_ALLOWED_IMAGE_PREFIXES" not in env  # any image unless listed
    assert container["args"][-3:] == ["--namespace=team-a", "--namespace=team-b", "--verbose"]
    # Namespaced permissions only inside the watched namespaces; the Lease in its own.
    assert role_binding_namespaces(manifests, "ClusterRole") == ["team-a", "team-b"]
    assert role_binding_namespaces(manifests, "Role") == ["ops"]
    for binding in by_kind(manifests, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "ocr-operator", "namespace": "ops"}
        ]
    (cluster_binding,) = by_kind(manifests, "ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == "ocr-operator-cluster"
    assert cluster_roles(manifests)["ocr-operator-cluster"] == EXPECTED_CLUSTER | NAMESPACES


def test_the_image_allow_list_reaches_the_operator_settings(
    render: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render("allowedImagePrefixes={ghcr.io/ocr-serving/,registry.example.com/ocr/}")
    (deployment,) = by_kind(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # The operator reads the rendered value as its own setting.
    monkeypatch.setenv(
        "OCR_OPERATOR_ALLOWED_IMAGE_PREFIXES", env["OCR_OPERATOR_ALLOWED_IMAGE_PREFIXES"]
    )
    prefixes = OperatorSettings().allowed_image_prefixes
    assert list(prefixes) == ["ghcr.io/ocr-serving/", "registry.example.com/ocr/"]


def test_image_digest_wins_over_tag(render: Renderer) -> None:
    digest = "sha256:" + "a" * 64
    (deployment,) = by_kind(render(f"image.digest={digest}", "image.tag=1.0"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/ocr-serving/ocr-operator@{digest}"


def test_rbac_is_exactly_what_the_operator_uses(render: Renderer) -> None:
    manifests = render()
    assert cluster_roles(manifests) == {
        "ocr-operator": EXPECTED_NAMESPACED,
        "ocr-operator-cluster": EXPECTED_CLUSTER | NAMESPACES,
    }
    assert roles(manifests) == {"ocr-operator-leader-election": LEASE}
    (lease_role,) = by_kind(manifests, "Role")
    named = [r for r in lease_role["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["ocr-operator"],
            "verbs": ["get", "update"],
        }
    ]
    assert cluster_roles(render("rbac.strimzi=true"))["ocr-operator"] == (
        EXPECTED_NAMESPACED | STRIMZI
    )


def test_rbac_grants_nothing_dangerous(render: Renderer) -> None:
    manifests = render("rbac.strimzi=true")
    granted = set().union(*cluster_roles(manifests).values(), *roles(manifests).values())
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
        assert verb != "update" or resource in {"ocrservings/finalizers", "leases"}
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
        "replicaCount=6",
        "logFormat=xml",
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


@pytest.mark.parametrize(
    "bad",
    [
        ("leaderElection.enabled=false", "replicaCount=2"),  # two would both reconcile
        ("clusterWide=true", "watchNamespaces={a}"),  # contradictory scopes
    ],
)
def test_values_schema_rejects_contradictions(helm: Path, bad: tuple[str, str]) -> None:
    done = run([helm, "template", "x", CHART_DIR, "--set", bad[0], "--set", bad[1]])
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
    monitors = {m["metadata"]["name"]: m for m in by_kind(manifests, "PodMonitor")}
    stacks, operator = monitors["ocr-operator-stacks"], monitors["ocr-operator"]
    assert stacks["spec"]["namespaceSelector"] == {"matchNames": ["ocr-system"]}
    (endpoint,) = stacks["spec"]["podMetricsEndpoints"]
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert targets == {"ocrserving", "component"}
    (deployment,) = by_kind(manifests, "Deployment")
    assert operator["spec"]["selector"] == deployment["spec"]["selector"]
    (operator_endpoint,) = operator["spec"]["podMetricsEndpoints"]
    assert operator_endpoint["port"] == "http"
    assert operator_endpoint["honorLabels"] is True  # the stack's namespace, not the pod's
    # kube-prometheus-stack selects PodMonitors and PrometheusRules by its release label.
    for selected in (stacks, operator, rule):
        assert selected["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_monitoring_labels_are_configurable(render: Renderer) -> None:
    manifests = render(
        "prometheusRule.enabled=true",
        "podMonitor.enabled=true",
        "podMonitor.operator=false",
        "monitoringLabels.release=prom",
        "podMonitor.labels.team=ocr",
        "clusterWide=true",
    )
    (monitor,) = by_kind(manifests, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["metadata"]["labels"]["team"] == "ocr"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    (rule,) = by_kind(manifests, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"


def test_pod_monitor_selects_the_pods_the_operator_renders(render: Renderer) -> None:
    monitors = by_kind(render("podMonitor.enabled=true", "watchNamespaces={ns1}"), "PodMonitor")
    (monitor,) = [m for m in monitors if m["metadata"]["name"].endswith("-stacks")]
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


def test_the_operators_kafka_security_comes_from_secrets_and_a_read_only_ca(
    render: Renderer,
) -> None:
    manifests = render(
        "kafkaSecurity.protocol=SASL_SSL",
        "kafkaSecurity.usernameSecretRef.name=operator-kafka",
        "kafkaSecurity.usernameSecretRef.key=user",
        "kafkaSecurity.passwordSecretRef.name=operator-kafka",
        "kafkaSecurity.passwordSecretRef.key=password",
        "kafkaSecurity.caSecretRef.name=events-cluster-ca-cert",
    )
    (deployment,) = by_kind(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["OCR_OPERATOR_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["OCR_OPERATOR_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["OCR_OPERATOR_KAFKA_SASL_USERNAME"] == {
        "secretKeyRef": {"name": "operator-kafka", "key": "user"}
    }
    assert env["OCR_OPERATOR_KAFKA_SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "operator-kafka", "key": "password"}
    }
    assert env["OCR_OPERATOR_KAFKA_SSL_CA_FILE"] == "/etc/ocr-operator/kafka-ca/ca.crt"
    fields = {f"OCR_OPERATOR_{name.upper()}" for name in OperatorSettings.model_fields}
    assert {name for name in env if name.startswith("OCR_OPERATOR_KAFKA")} <= fields
    mount = next(m for m in container["volumeMounts"] if m["name"] == "kafka-ca")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "kafka-ca")
    assert volume["secret"] == {
        "secretName": "events-cluster-ca-cert",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    plain = by_kind(render(), "Deployment")[0]["spec"]["template"]["spec"]
    assert not [e for e in plain["containers"][0]["env"] if "KAFKA_S" in e["name"]]
    assert all(v["name"] != "kafka-ca" for v in plain["volumes"])
