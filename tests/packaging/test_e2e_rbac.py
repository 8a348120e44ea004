"""End to end: the chart installed in the local cluster, and the operator run with the chart's
command line under the chart's ServiceAccount (a TokenRequest token, no admin rights). A
stack goes Ready, switches Standard -> Writer -> Standard, has a deleted child restored and
is deleted; the operator meets no `Forbidden` on the way. Then the ServiceAccount is shown
to hold exactly the chart's permissions and nothing of what it must not do."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import kubeconfig_server_and_token
from tests.packaging._kube import Kubectl, condition, private_copy, unique, wait_for
from tests.packaging.conftest import CHART_DIR, REPO_ROOT, run
from tests.packaging.test_chart import EXPECTED_CLUSTER, EXPECTED_NAMESPACED, LEASE, NAMESPACES
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

CRD_NAME = "ocrservings.ocrserving.io"
STACK = "stack"


@dataclass
class Install:
    admin: Kubectl
    operator_ns: str
    stacks_ns: str
    account: str  # system:serviceaccount:<ns>:<name>
    as_account: Kubectl  # the ServiceAccount's own token
    log: Path


def _token_kubeconfig(admin_config: Path, token: str, path: Path) -> Path:
    server, _ = kubeconfig_server_and_token(admin_config)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "operator"}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _operator_command(
    deployment: dict[str, Any], health_port: int
) -> tuple[list[str], dict[str, str]]:
    """The chart's container command line and environment, for a process on this machine."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [a.replace("0.0.0.0:8080", f"127.0.0.1:{health_port}") for a in container["args"]]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return [str(Path(sys.executable).parent / "ocr-operator"), *args], env


def _helm(helm: Path, kubeconfig: Path, *args: str) -> str:
    done = run([helm, f"--kubeconfig={kubeconfig}", *args], timeout=300)
    assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def install(
    helm: Path, kubeconfig: Path, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Install]:
    work = tmp_path_factory.mktemp("rbac-e2e")
    kubeconfig = private_copy(kubeconfig, work)
    admin = Kubectl(kubeconfig)
    operator_ns, stacks_ns = unique("pkg-op"), unique("pkg-stacks")
    release = operator_ns
    for namespace in (operator_ns, stacks_ns):
        admin.ok("create", "namespace", namespace)
    admin.ok(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(CHART_DIR / "crds" / "ocrserving.yaml"),
    )
    # Polled: `kubectl wait` fails at once when asked before the first condition exists.
    wait_for(
        lambda: (
            condition(admin.json("get", f"crd/{CRD_NAME}"), "Established").get("status") == "True"
        ),
        f"CRD {CRD_NAME} Established",
        timeout=60,
    )
    # replicaCount=0: the in-cluster pod would be a kwok fake; the operator runs here instead,
    # under the identity the chart created.
    _helm(
        helm,
        kubeconfig,
        "install",
        release,
        str(CHART_DIR),
        "--namespace",
        operator_ns,
        "--set",
        f"watchNamespaces={{{stacks_ns}}}",
        "--set",
        "replicaCount=0",
    )
    deployment = admin.json("get", "deployment", f"{release}-ocr-operator", "-n", operator_ns)
    assert deployment is not None
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    token = admin.ok("create", "token", account, "-n", operator_ns, "--duration=2h").strip()
    sa_config = _token_kubeconfig(kubeconfig, token, work / "operator.kubeconfig")

    health_port = free_port()
    command, chart_env = _operator_command(deployment, health_port)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OCR_")},
        **chart_env,
        "KUBECONFIG": str(sa_config),
        # The stacks name an in-cluster broker; the operator on this machine uses the local one.
        "OCR_OPERATOR_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "OCR_OPERATOR_RESYNC_SECONDS": "3",
        "OCR_OPERATOR_WAIT_SECONDS": "1",
        "OCR_OPERATOR_ERROR_BACKOFF_SECONDS": "2",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    log = work / "operator.log"
    with log.open("w") as sink:
        operator = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=work
        )
    try:
        wait_for(
            lambda: _healthy(health_port) or operator.poll() is not None,
            "the operator's liveness endpoint",
            timeout=60,
        )
        assert operator.poll() is None, log.read_text()[-3000:]
        yield Install(
            admin,
            operator_ns,
            stacks_ns,
            f"system:serviceaccount:{operator_ns}:{account}",
            Kubectl(sa_config),
            log,
        )
        # Delete while the operator runs: it removes its own finalizer.
        admin.run("delete", "ocrs", "--all", "-n", stacks_ns, "--wait=true", "--timeout=60s")
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
        run([helm, f"--kubeconfig={kubeconfig}", "uninstall", release, "-n", operator_ns])
        for namespace in (operator_ns, stacks_ns):
            admin.run("delete", "namespace", namespace, "--wait=false")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stack_documents(namespace: str) -> list[dict[str, Any]]:
    documents = [
        d for d in yaml.safe_load_all((REPO_ROOT / "examples/standard.yaml").read_text()) if d
    ]
    stack = copy.deepcopy(next(d for d in documents if d["kind"] == "OCRServing"))
    stack["metadata"]["name"] = STACK
    spec = stack["spec"]
    prefix = f"{namespace}-{STACK}"  # topics of their own in the shared broker
    spec["kafka"]["topics"] = {
        "jobs": f"{prefix}-jobs",
        "results": f"{prefix}-results",
        "deadLetter": f"{prefix}-dlq",
    }
    spec["kafka"]["partitions"] = 2
    spec["api"]["replicas"] = 1
    spec["worker"]["replicas"] = 1
    spec["writer"] = {"replicas": 1}
    return [d for d in documents if d["kind"] == "Secret"] + [stack]


def _ready(install: Install, mode: str) -> dict[str, Any] | None:
    resource = install.admin.json("get", "ocrs", STACK, "-n", install.stacks_ns)
    if resource is None or condition(resource, "Ready").get("status") != "True":
        return None
    status = resource["status"]
    if status.get("observedGeneration") != resource["metadata"]["generation"]:
        return None
    return resource if status.get("activeMode") == mode else None


def _deployments(install: Install) -> set[str]:
    listed = install.admin.json(
        "get", "deployments", "-n", install.stacks_ns, "-l", f"app.kubernetes.io/instance={STACK}"
    )
    assert listed is not None
    return {d["metadata"]["name"] for d in listed["items"]}


def _diagnostics(install: Install) -> str:
    resource = install.admin.json("get", "ocrs", STACK, "-n", install.stacks_ns) or {}
    status = yaml.safe_dump(resource.get("status"), sort_keys=False)
    log = "\n".join(install.log.read_text().splitlines()[-40:])
    return f"status:\n{status}\noperator log (tail):\n{log}"


def _await(install: Install, probe: Callable[[], object], what: str) -> None:
    try:
        wait_for(probe, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_diagnostics(install)}") from None


# A log line's clock time, whose milliseconds can read 403 ("21:02:13,403").
_CLOCK = re.compile(r"\d{2}:\d{2}:\d{2}[,.]\d+")


def _forbidden_lines(install: Install) -> list[str]:
    return [
        line
        for line in install.log.read_text().splitlines()
        if re.search(r"\b403\b", _CLOCK.sub("", line)) or "forbidden" in line.lower()
    ]


def test_operator_reconciles_a_stack_under_the_chart_service_account(install: Install) -> None:
    admin, ns = install.admin, install.stacks_ns
    admin.ok("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump_all(_stack_documents(ns)))
    _await(install, lambda: _ready(install, "Standard"), "Ready in Standard")
    assert _deployments(install) == {f"{STACK}-api", f"{STACK}-worker"}

    admin.ok(
        "patch",
        "ocrs",
        STACK,
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"architecture":{"mode":"Writer"}}}',
    )
    _await(install, lambda: _ready(install, "Writer"), "Ready in Writer")
    assert _deployments(install) == {f"{STACK}-api", f"{STACK}-worker", f"{STACK}-writer"}

    admin.ok(
        "patch",
        "ocrs",
        STACK,
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"architecture":{"mode":"Standard"}}}',
    )
    _await(
        install,
        lambda: (
            _ready(install, "Standard")
            and _deployments(install) == {f"{STACK}-api", f"{STACK}-worker"}
        ),
        "back in Standard without the writer",
    )

    admin.ok("delete", "deployment", f"{STACK}-worker", "-n", ns, "--wait=true")
    _await(install, lambda: f"{STACK}-worker" in _deployments(install), "deleted worker restored")

    events = admin.json(
        "get", "events", "-n", ns, "--field-selector", f"involvedObject.name={STACK}"
    )
    assert events is not None and events["items"], "the operator posted no Event"
    assert not _forbidden_lines(install), "\n".join(_forbidden_lines(install)[:20])


def test_deleting_the_stack_completes_under_the_service_account(install: Install) -> None:
    admin, ns = install.admin, install.stacks_ns
    wait_for(lambda: _ready(install, "Standard"), "Ready in Standard")
    # The finalizer can only come off through the operator's own patch.
    done = admin.run("delete", "ocrs", STACK, "-n", ns, "--wait=true", "--timeout=90s")
    assert done.returncode == 0, done.stderr
    assert admin.json("get", "ocrs", STACK, "-n", ns) is None
    assert not _forbidden_lines(install), "\n".join(_forbidden_lines(install)[:20])


def _listed_rules(kubectl: Kubectl, namespace: str) -> set[tuple[str, str, str]]:
    """`kubectl auth can-i --list` as (apiGroup, resource, verb), minus what every
    authenticated identity may do (self reviews)."""
    done = kubectl.run("auth", "can-i", "--list", "-n", namespace)
    assert done.returncode == 0, done.stderr
    granted = set()
    for line in done.stdout.splitlines()[1:]:
        if not line.strip() or line.startswith(" "):  # non-resource URL rows
            continue
        resource = line.split()[0]
        if resource.startswith("self"):
            continue
        verbs = line[line.rindex("[") + 1 : line.rindex("]")].split()
        base, _, subresource = resource.partition("/")
        name, _, group = base.partition(".")
        if subresource:
            name = f"{name}/{subresource}"
        for verb in verbs:
            granted.add((group, name, verb))
    return granted


def test_service_account_holds_exactly_the_chart_permissions(install: Install) -> None:
    stacks = _listed_rules(install.as_account, install.stacks_ns)
    # The chart was installed with a namespace list: kopf also follows namespaces.
    assert stacks == EXPECTED_NAMESPACED | EXPECTED_CLUSTER | NAMESPACES
    # Outside the watched namespace only the cluster-scoped reads remain, plus the Lease in
    # the operator's own namespace.
    assert _listed_rules(install.as_account, "default") == EXPECTED_CLUSTER | NAMESPACES
    operator = _listed_rules(install.as_account, install.operator_ns)
    assert operator == EXPECTED_CLUSTER | NAMESPACES | LEASE


def test_the_operator_leads_through_the_chart_lease(install: Install) -> None:
    # The chart's command line elects a leader: the one process took the Lease under the
    # ServiceAccount (renewing it needs `update` on that one name).
    name = f"{install.operator_ns}-ocr-operator"  # the release is named after its namespace
    lease = install.admin.json("get", "lease", name, "-n", install.operator_ns)
    assert lease is not None
    assert lease["spec"]["holderIdentity"]
    assert any('"leading as ' in line for line in install.log.read_text().splitlines())


@pytest.mark.parametrize(
    ("verb", "resource", "where"),
    [
        ("get", "secrets", "stacks"),
        ("list", "secrets", "stacks"),
        ("create", "pods", "stacks"),
        ("create", "pods/exec", "stacks"),
        ("delete", "ocrservings.ocrserving.io", "stacks"),
        ("update", "ocrservings.ocrserving.io", "stacks"),
        ("create", "deployments.apps", "default"),
        ("list", "ocrservings.ocrserving.io", "default"),
        ("get", "secrets", "operator"),
        ("patch", "nodes", None),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
        ("get", "namespaces", None),
        ("create", "namespaces", None),
    ],
)
def test_service_account_cannot_do_what_it_must_not(
    install: Install, verb: str, resource: str, where: str | None
) -> None:
    namespace = {
        "stacks": install.stacks_ns,
        "operator": install.operator_ns,
        "default": "default",
        None: None,
    }[where]
    assert not install.as_account.can_i(verb, resource, namespace)
    impersonated = Kubectl(install.admin.kubeconfig, impersonate=install.account)
    assert not impersonated.can_i(verb, resource, namespace)


def test_service_account_can_do_what_the_operator_needs(install: Install) -> None:
    ns = install.stacks_ns
    for verb, resource in (
        ("patch", "deployments.apps"),
        ("create", "events"),
        ("patch", "ocrservings.ocrserving.io/status"),
        ("delete", "horizontalpodautoscalers.autoscaling"),
    ):
        assert install.as_account.can_i(verb, resource, ns), (verb, resource)
    assert install.as_account.can_i("watch", "customresourcedefinitions.apiextensions.k8s.io")


@contextlib.contextmanager
def _release_account(
    helm: Path, kubeconfig: Path, folder: Path, prefix: str, *values: str
) -> Iterator[tuple[str, Kubectl]]:
    """A release of the chart in a namespace of its own (no pods: kwok fakes here), and its
    ServiceAccount's own token; uninstalled afterwards."""
    admin = Kubectl(private_copy(kubeconfig, folder))
    namespace = unique(prefix)
    admin.ok("create", "namespace", namespace)
    sets = [arg for value in ("replicaCount=0", *values) for arg in ("--set", value)]
    try:
        _helm(helm, admin.kubeconfig, "install", namespace, str(CHART_DIR),
              "--namespace", namespace, *sets, "--skip-crds")  # fmt: skip
        account = f"{namespace}-ocr-operator"
        token = admin.ok("create", "token", account, "-n", namespace, "--duration=10m").strip()
        yield namespace, Kubectl(_token_kubeconfig(admin.kubeconfig, token, folder / "sa.kc"))
    finally:
        run([helm, f"--kubeconfig={admin.kubeconfig}", "uninstall", namespace, "-n", namespace])
        admin.run("delete", "namespace", namespace, "--wait=false")


def test_default_install_watches_only_its_own_namespace(
    helm: Path, kubeconfig: Path, tmp_path: Path
) -> None:
    # The operator's permissions exist in its own namespace only, with its Lease there.
    with _release_account(helm, kubeconfig, tmp_path, "pkg-op-own") as (namespace, account):
        assert _listed_rules(account, namespace) == (
            EXPECTED_NAMESPACED | EXPECTED_CLUSTER | NAMESPACES | LEASE
        )
        assert _listed_rules(account, "default") == EXPECTED_CLUSTER | NAMESPACES


def test_cluster_wide_install_grants_the_same_rules_in_every_namespace(
    helm: Path, kubeconfig: Path, tmp_path: Path
) -> None:
    values = ("clusterWide=true",)
    with _release_account(helm, kubeconfig, tmp_path, "pkg-op-cw", *values) as (namespace, account):
        # Cluster-wide: no namespace list, so kopf needs no access to namespaces.
        assert _listed_rules(account, "default") == EXPECTED_NAMESPACED | EXPECTED_CLUSTER
        assert _listed_rules(account, namespace) == (EXPECTED_NAMESPACED | EXPECTED_CLUSTER | LEASE)
        assert not account.can_i("get", "secrets", "default")
        assert not account.can_i("list", "namespaces")
