"""On the local apiserver: the operator benchmark's client deletes what an interrupted run
left, and says so when the operator's finalizer keeps it there."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from benchmarks.ocrserving_client import Cluster

from tests.operator._cluster import get, install_crds, kubectl
from tests.operator._examples import ROOT, example_resource

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-bench-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _leftover(namespace: str, name: str, *, finalizer: bool) -> None:
    resource = copy.deepcopy(example_resource("standard"))
    resource["metadata"] = {"name": name, "namespace": namespace}
    if finalizer:
        resource["metadata"]["finalizers"] = [FINALIZER]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(resource))


def test_delete_all_waits_until_every_resource_is_gone(namespace: str) -> None:
    for name in ("left-a", "left-b"):
        _leftover(namespace, name, finalizer=False)
    cluster = Cluster(namespace)
    cluster.delete_all(timeout=30.0)
    assert cluster.items() == []


def test_delete_all_fails_with_the_names_a_finalizer_keeps(namespace: str) -> None:
    _leftover(namespace, "held", finalizer=True)
    cluster = Cluster(namespace)
    try:
        with pytest.raises(RuntimeError, match=r"1 OCRServings still present .*\(held\.\.\.\)"):
            cluster.delete_all(timeout=2.0)
        held = get("ocrservings", "held", namespace)
        assert held is not None and held["metadata"].get("deletionTimestamp")
    finally:
        kubectl("patch", "ocrserving", "held", "-n", namespace, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
    cluster.delete_all(timeout=30.0)
    assert cluster.items() == []
