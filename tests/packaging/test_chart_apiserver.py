"""The rendered chart against the real apiserver: `kubectl apply --dry-run=server` runs the
CRD, RBAC and Deployment through validation and admission without persisting them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.packaging._kube import Kubectl, private_copy, unique
from tests.packaging.conftest import render_chart

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(private_copy(kubeconfig, tmp_path_factory.mktemp("dry-run")))


@pytest.fixture
def namespace(admin: Kubectl) -> Iterator[str]:
    # Namespaced objects need their namespace to exist, even in a dry run.
    name = unique("pkg-dryrun")
    admin.ok("create", "namespace", name)
    yield name
    admin.run("delete", "namespace", name, "--wait=false")


def dry_run(admin: Kubectl, text: str) -> list[str]:
    done = admin.run(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--force-conflicts",
        "--field-manager=pkg-dryrun",
        "-f",
        "-",
        stdin=text,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    "values",
    [
        (),
        ("clusterWide=true",),
        ("watchNamespaces={NS}", "rbac.strimzi=true", "leaderElection.enabled=false",
         "replicaCount=1"),
    ],
    ids=["defaults", "cluster-wide", "namespace-list-single"],
)  # fmt: skip
def test_rendered_chart_passes_server_side_dry_run(
    helm: Path, admin: Kubectl, namespace: str, values: tuple[str, ...]
) -> None:
    text = render_chart(
        helm,
        *(v.replace("NS", namespace) for v in values),
        namespace=namespace,
        release=namespace,
        include_crds=True,
    )
    documents = [d for d in yaml.safe_load_all(text) if d]
    lines = dry_run(admin, text)
    assert len(lines) == len(documents), lines
    assert all(line.endswith("(server dry run)") for line in lines), lines
    kinds = {line.split("/")[0].split(".")[0] for line in lines}
    assert {"customresourcedefinition", "serviceaccount", "clusterrole", "deployment"} <= kinds


def test_dry_run_rejects_what_the_apiserver_would_reject(
    helm: Path, admin: Kubectl, namespace: str
) -> None:
    # The check is real: a Deployment with a malformed label selector is refused.
    text = render_chart(helm, namespace=namespace, release=namespace)
    documents = [d for d in yaml.safe_load_all(text) if d]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    deployment["spec"]["selector"]["matchLabels"] = {"app": "not-the-template-label"}
    done = admin.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(deployment))
    assert done.returncode != 0
    assert "selector" in done.stderr and "does not match template" in done.stderr
