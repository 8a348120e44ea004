"""Smoke tests of the local control plane: CRDs, Deployments on fake GPU nodes, RBAC with
ServiceAccount tokens. Plain REST over httpx (plus kubectl for `rollout status`)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import kubeconfig_server_and_token

pytestmark = pytest.mark.e2e

GROUP = "smoke.ocr-serving.local"
WAIT_S = 90.0
T = TypeVar("T")
Json = dict[str, Any]


def _client(server: str, token: str) -> httpx.Client:
    # The local apiserver's certificate is self-signed; the kubeconfig skips verification too.
    return httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {token}"}, verify=False, timeout=10
    )


@pytest.fixture(scope="module")
def kube(kubeconfig: Path) -> Iterator[httpx.Client]:
    with _client(*kubeconfig_server_and_token(kubeconfig)) as http:
        yield http


def _ok(response: httpx.Response) -> Json:
    assert response.is_success, f"{response.request.method} {response.url}: {response.text}"
    body: Json = response.json()
    return body


@pytest.fixture
def namespace(kube: httpx.Client) -> Iterator[str]:
    name = f"infra-smoke-{uuid.uuid4().hex[:8]}"
    _ok(kube.post("/api/v1/namespaces", json={"metadata": {"name": name}}))
    yield name
    _ok(kube.delete(f"/api/v1/namespaces/{name}"))


def _wait_for(what: str, probe: Callable[[], T]) -> T:
    """Polls probe() until it returns something truthy; fails after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def _crd(plural: str) -> Json:
    replicas = {"type": "integer", "minimum": 0}
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"replicas": replicas}}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": "SmokeWidget"},
            "versions": [
                {"name": "v1", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": schema}},
            ],
        },
    }  # fmt: skip


def test_custom_resource_definition_serves_and_validates(
    kube: httpx.Client, namespace: str
) -> None:
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    crd_path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{GROUP}"
    _ok(kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=_crd(plural)))
    try:

        def established() -> bool:
            status = _ok(kube.get(crd_path)).get("status") or {}
            conditions = status.get("conditions") or []  # null until the first status write
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        _wait_for("the CRD to be Established", established)
        objects = f"/apis/{GROUP}/v1/namespaces/{namespace}/{plural}"
        widget = {"apiVersion": f"{GROUP}/v1", "kind": "SmokeWidget"}
        good = {**widget, "metadata": {"name": "good"}, "spec": {"replicas": 2}}
        _ok(kube.post(objects, json=good))
        assert _ok(kube.get(f"{objects}/good"))["spec"] == {"replicas": 2}
        bad = {**widget, "metadata": {"name": "bad"}, "spec": {"replicas": -1}}
        assert kube.post(objects, json=bad).status_code == 422
    finally:
        _ok(kube.delete(crd_path))


def _deployment(name: str, gpus: int) -> Json:
    resources: Json = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    container = {"name": "main", "image": "example.invalid/ocr:smoke", "resources": resources}
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


@pytest.mark.parametrize("gpus", [0, 1], ids=["cpu", "gpu"])
def test_deployment_pods_become_ready_on_fake_nodes(
    kube: httpx.Client, kubeconfig: Path, namespace: str, gpus: int
) -> None:
    name = f"smoke-{'gpu' if gpus else 'cpu'}"
    _ok(
        kube.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=_deployment(name, gpus))
    )
    rollout = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace, "rollout", "status",
         f"deployment/{name}", f"--timeout={int(WAIT_S)}s"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rollout.returncode == 0, rollout.stdout + rollout.stderr
    pods = _ok(
        kube.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": f"app={name}"})
    )
    assert len(pods["items"]) == 2
    for pod in pods["items"]:
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}.get("Ready")
        assert (pod["status"]["phase"], ready) == ("Running", "True")
        node = _ok(kube.get(f"/api/v1/nodes/{pod['spec']['nodeName']}"))
        assert node["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake"
        if gpus:
            assert int(node["status"]["allocatable"]["nvidia.com/gpu"]) >= gpus


def _grant_configmap_reading(kube: httpx.Client, namespace: str, account: str) -> None:
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
    _ok(kube.post(f"{rbac}/roles", json={"metadata": {"name": account}, "rules": [rule]}))
    binding = {
        "metadata": {"name": account},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }
    _ok(kube.post(f"{rbac}/rolebindings", json=binding))


def test_service_account_token_is_authorized_by_rbac(kube: httpx.Client, namespace: str) -> None:
    accounts = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    _ok(kube.post(accounts, json={"metadata": {"name": "reader"}}))
    token_request = {"spec": {"audiences": [], "expirationSeconds": 600}}
    token = _ok(kube.post(f"{accounts}/reader/token", json=token_request))["status"]["token"]
    with _client(str(kube.base_url).rstrip("/"), token) as as_reader:
        whoami = _ok(
            as_reader.post(
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
        )
        assert whoami["status"]["userInfo"]["username"] == (
            f"system:serviceaccount:{namespace}:reader"
        )
        configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
        assert as_reader.get(configmaps).status_code == 403
        _grant_configmap_reading(kube, namespace, "reader")

        def listed() -> list[str]:
            response = as_reader.get(configmaps)
            return (
                [m["metadata"]["name"] for m in _ok(response)["items"]]
                if response.is_success
                else []
            )

        # The controller manager publishes the cluster's root CA into every namespace.
        assert "kube-root-ca.crt" in _wait_for("RBAC to let the ServiceAccount read", listed)
        assert as_reader.get(f"/api/v1/namespaces/{namespace}/secrets").status_code == 403


# --- the real node: `down` leaves nothing behind, `up` twice is harmless -----------------

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPT = REPO_ROOT / "scripts" / "infra" / "node.sh"
NODE_STATE = REPO_ROOT / ".local" / "node"
NODE_BRIDGE = Path("/sys/class/net/ocrbr0")
# What only the node puts into iptables: its tagged rules and chains, kube-proxy's and the
# kubelet's KUBE-* chains, and the CNI portmap rules of its network ("ocr-node").
NODE_IPTABLES_MARKS = ("ocr-serving-node", "OCR-NODE-", "KUBE-", '"ocr-node"', "ocrbr0")


def _node_script(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE_SCRIPT), command], capture_output=True, text=True, timeout=900, check=False
    )


def _node_processes() -> list[str]:
    """Processes whose command line names the node's state (containerd, its shims, the
    kubelet, kube-proxy, CoreDNS) or that live in the kubelet's pod cgroups."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroups = (proc / "cgroup").read_text(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if str(NODE_STATE) in cmdline or "/kubepods" in cgroups:
            found.append(f"pid {proc.name}: {cmdline.strip()[:200]}")
    return found


def _node_leftovers(veths: set[str]) -> list[str]:
    left = _node_processes()
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    left += [f"mount: {line}" for line in mounts if str(NODE_STATE) in line]
    left += [f"netns file: {p}" for p in NODE_STATE.glob("containerd/state/**/netns/*")]
    left += [f"interface: {name}" for name in veths if Path(f"/sys/class/net/{name}").exists()]
    if NODE_BRIDGE.exists():
        left.append("bridge ocrbr0")
    for save in ("iptables-save", "ip6tables-save"):
        rules = subprocess.run([save], capture_output=True, text=True, check=True).stdout
        left += [
            f"{save}: {line}"
            for line in rules.splitlines()
            if any(mark in line for mark in NODE_IPTABLES_MARKS)
        ]
    return left


def _sleeper(name: str) -> Json:
    toleration = {"key": "ocr-serving.local/real-node", "operator": "Exists"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"ocr-serving.local/node": "real"},
            "tolerations": [toleration],
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": "localhost/ocr-node-test:busybox",
                 "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}
            ],
        },
    }  # fmt: skip


def _kubectl_wait_ready(kubeconfig: Path, namespace: str, name: str) -> None:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace, "wait",
         "--for=condition=Ready", f"pod/{name}", "--timeout=180s"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_node_down_leaves_nothing_behind_and_up_twice_restores_its_pods(
    kube: httpx.Client, kubeconfig: Path, namespace: str
) -> None:
    """`cluster.sh down` runs `node.sh down` first: no process, mount, network namespace,
    veth, bridge or iptables rule of the node may survive it."""
    status = _node_script("status")
    assert status.returncode == 0, f"the real node is not running:\n{status.stdout}"
    _ok(kube.post(f"/api/v1/namespaces/{namespace}/pods", json=_sleeper("sleeper")))
    _kubectl_wait_ready(kubeconfig, namespace, "sleeper")
    veths = {p.name for p in (NODE_BRIDGE / "brif").iterdir()}
    assert veths, "a running pod should have a veth on ocrbr0"
    try:
        down = _node_script("down")
        assert down.returncode == 0, down.stderr[-3000:]
        assert _node_leftovers(veths) == []
    finally:
        for _ in range(2):
            up = _node_script("up")
            assert up.returncode == 0, up.stderr[-3000:]
    assert _node_script("status").returncode == 0
    _kubectl_wait_ready(kubeconfig, namespace, "sleeper")
