"""On the local apiserver: the scale subresource (`kubectl scale ocrs/NAME`), the CEL rules of
worker autoscaling, and the rendered KEDA ScaledObject through a real server-side apply.

KEDA cannot be installed on the local cluster (no image registry): the ScaledObject goes to a
stand-in CRD (tests/operator/testdata), which proves the apply path, owner reference, labels
and shape, not KEDA's scaling. Scale-to-zero and wake-up were not run on the node."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocr_operator.apply import KubeClient
from ocr_operator.children import apply_all as apply_children
from ocr_operator.model import OCRServingSpec
from ocr_operator.ports import Owner
from ocr_operator.render import Instance, Kind, Observed, instance_labels, plan_transition, render
from ocr_operator.settings import OperatorSettings
from tests.operator._cluster import get, install_crds, kubectl, standin_crd
from tests.operator._examples import ROOT, example_resource

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

STANDIN = Path(__file__).parent / "testdata" / "keda-scaledobject-standin.yaml"
KEDA = {"enabled": True, "provider": "KEDA", "minReplicas": 0, "maxReplicas": 4}


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-scale-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _resource(name: str, **spec: Any) -> dict[str, Any]:
    resource = copy.deepcopy(example_resource("standard"))
    resource["metadata"] = {"name": name}
    resource["spec"].update(spec)
    return resource


def _dry_run(namespace: str, resource: dict[str, Any]) -> str:
    return kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-",
        stdin=yaml.safe_dump(resource), check=False,
    )  # fmt: skip


def test_kubectl_scale_sets_the_worker_replicas(namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(_resource("scaled")))
    kubectl("scale", "ocrs/scaled", "-n", namespace, "--replicas=4")
    resource = get("ocrs", "scaled", namespace)
    assert resource is not None and resource["spec"]["worker"]["replicas"] == 4
    # The CEL rules hold through the scale subresource too.
    out = kubectl("scale", "ocrs/scaled", "-n", namespace, "--replicas=9", check=False)
    assert "worker.replicas must not exceed kafka.partitions" in out, out
    # What the operator reports is what the scale subresource returns (an HPA reads it).
    status = {"workerReplicas": 4, "workerSelector": "app.kubernetes.io/instance=scaled"}
    kubectl(
        "patch", "ocrs", "scaled", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    scale = json.loads(
        kubectl("get", "ocrs", "scaled", "-n", namespace, "--subresource=scale", "-o", "json")
    )
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 4
    assert scale["status"] == {"replicas": 4, "selector": "app.kubernetes.io/instance=scaled"}


def test_scale_to_zero_needs_keda(namespace: str) -> None:
    hpa = {"enabled": True, "minReplicas": 0, "maxReplicas": 4}
    out = _dry_run(namespace, _resource("zero", worker={"autoscaling": hpa}))
    assert "minReplicas 0 (scale to zero) needs provider KEDA" in out, out
    out = _dry_run(namespace, _resource("zero", worker={"autoscaling": KEDA}))
    assert "created (server dry run)" in out, out
    too_many = {**KEDA, "maxReplicas": 7}
    out = _dry_run(namespace, _resource("zero", worker={"autoscaling": too_many}))
    assert "worker.autoscaling.maxReplicas must not exceed kafka.partitions" in out, out


@pytest.fixture
def keda_crd(kubeconfig: Path) -> Iterator[None]:
    with standin_crd(STANDIN, "scaledobjects.keda.sh"):
        yield


def test_the_rendered_scaled_object_is_applied_server_side(namespace: str, keda_crd: None) -> None:
    resource = _resource("keda", worker={"autoscaling": KEDA})
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(resource))
    owner_body = get("ocrs", "keda", namespace)
    assert owner_body is not None
    owner = Owner("keda", namespace, owner_body["metadata"]["uid"])
    spec = OCRServingSpec.model_validate(owner_body["spec"])
    instance = Instance("keda", namespace)
    manifests = render(spec, instance, plan_transition(spec.architecture.mode, Observed()))
    scaled = next(m for m in manifests if m.kind is Kind.SCALED_OBJECT)

    async def apply_and_list() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        kube = KubeClient.from_environment()
        try:
            stored = await kube.apply(scaled, owner)
            await kube.apply(scaled, owner)  # idempotent, as on every resync
            listed = await kube.list(Kind.SCALED_OBJECT, namespace, instance_labels(instance))
        finally:
            kube.close()
        return stored, listed

    stored, listed = asyncio.run(apply_and_list())
    assert stored["spec"] == scaled.body["spec"]  # nothing pruned by the schema
    assert stored["metadata"]["ownerReferences"][0]["uid"] == owner.uid
    assert [item["metadata"]["name"] for item in listed] == ["keda-worker"]
    assert stored["spec"]["minReplicaCount"] == 0


def test_resyncs_never_undo_what_the_scaler_set(namespace: str) -> None:
    """The operator's server-side apply of a KEDA-scaled worker Deployment, again after the
    scaler took it to zero: the replicas stay where the scaler put them."""
    resource = _resource("nofight", worker={"autoscaling": KEDA})
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(resource))
    owner_body = get("ocrs", "nofight", namespace)
    assert owner_body is not None
    owner = Owner("nofight", namespace, owner_body["metadata"]["uid"])
    spec = OCRServingSpec.model_validate(owner_body["spec"])
    manifests = render(
        spec, Instance("nofight", namespace), plan_transition(spec.architecture.mode, Observed())
    )
    worker = next(m for m in manifests if m.key == (Kind.DEPLOYMENT, "nofight-worker"))
    assert "replicas" not in worker.body["spec"]

    def apply() -> None:
        async def run() -> None:
            kube = KubeClient.from_environment()
            try:
                await kube.apply(worker, owner)
            finally:
                kube.close()

        asyncio.run(run())

    apply()
    # KEDA (or an HPA) scales through the Deployment's scale subresource.
    kubectl("scale", "deployment/nofight-worker", "-n", namespace, "--replicas=0")
    for _ in range(2):  # two resyncs
        apply()
        live = get("deployment", "nofight-worker", namespace)
        assert live is not None and live["spec"]["replicas"] == 0
    kubectl("scale", "deployment/nofight-worker", "-n", namespace, "--replicas=3")
    apply()
    live = get("deployment", "nofight-worker", namespace)
    assert live is not None and live["spec"]["replicas"] == 3


def test_switching_an_autoscaler_on_keeps_the_replicas(namespace: str) -> None:
    """Leaving replicas out of the operator's apply would reset them to 1; the handoff keeps
    the live count until the scaler's first decision takes the field over."""
    resource = _resource("handoff", worker={"replicas": 3})
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(resource))
    owner_body = get("ocrs", "handoff", namespace)
    assert owner_body is not None
    owner = Owner("handoff", namespace, owner_body["metadata"]["uid"])

    def worker(spec_patch: dict[str, Any]) -> Any:
        raw = copy.deepcopy(owner_body["spec"])
        raw["worker"].update(spec_patch)
        spec = OCRServingSpec.model_validate(raw)
        plan = plan_transition(spec.architecture.mode, Observed())
        return next(
            m
            for m in render(spec, Instance("handoff", namespace), plan)
            if m.key == (Kind.DEPLOYMENT, "handoff-worker")
        )

    def apply_all(manifest: Any) -> None:
        async def run() -> None:
            kube = KubeClient.from_environment()
            try:
                backoff = OperatorSettings().error_backoff_seconds
                await apply_children(kube, owner, [manifest], backoff=backoff)
            finally:
                kube.close()

        asyncio.run(run())

    apply_all(worker({}))
    assert _replicas(namespace) == 3
    apply_all(worker({"autoscaling": KEDA}))  # the operator now leaves replicas out
    assert _replicas(namespace) == 3  # not 1
    kubectl("scale", "deployment/handoff-worker", "-n", namespace, "--replicas=0")
    apply_all(worker({"autoscaling": KEDA}))
    assert _replicas(namespace) == 0


def _replicas(namespace: str) -> int:
    live = get("deployment", "handoff-worker", namespace)
    assert live is not None
    return int(live["spec"]["replicas"])
