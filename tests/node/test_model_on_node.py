"""A worker of the runtime image on the real node serves the version an MLflow alias names:
the rendered worker Deployment (its fetch-model init container, the emptyDir, OCR_MODEL_DIR)
runs for real, /readyz reports the model, moving the alias rolls the pod onto the new
version, and a version whose files do not match its manifest stops the rollout while the
old pod keeps serving (maxUnavailable 0), with the cause the operator reports. A claim's
folder is served mounted read-only, and an s3:// folder is fetched with the key pair of a
Secret.

The pods reach the registry and the S3 API through forwarders this module starts on the
node's gateway (10.90.0.1:15000 -> the host's MLflow, 10.90.0.1:15900 -> the host's S3Proxy).
The image must carry `ocr-runtime fetch-model`: OCR_TEST_RUNTIME_IMAGE names it (default
localhost/ocr-runtime:dev-onnx, from `make images`;
`RUNTIME_TAG=localhost/ocr-runtime:<tag>-onnx scripts/images.sh runtime` builds another)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocr_operator.health import pod_causes
from ocr_operator.kafka_topics import KafkaTopicAdmin
from ocr_operator.mlflow_registry import MlflowRegistry
from ocr_operator.model import Component, Mode, OCRServingSpec, Reason
from ocr_operator.model.model_source import MlflowModelRef, ResolvedModel, static_resolution
from ocr_operator.ports import TopicRequest
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_operator.render.model import ANNOTATION_MODEL
from ocr_runtime.adapters.engines import write_manifest
from tests.conftest import S3Server
from tests.engines.model_dirs import onnx_model_dir
from tests.node._kube import NODE_SELECTOR, TAINT_KEY, Kube, wait_for
from tests.operator._examples import example_resource
from tests.operator._mlflow import Registry, model_versions
from tests.support.s3 import Bucket

pytestmark = pytest.mark.e2e

IMAGE = os.environ.get("OCR_TEST_RUNTIME_IMAGE", "localhost/ocr-runtime:dev-onnx")
GATEWAY = "10.90.0.1"
FORWARD_PORT = 15000
S3_FORWARD_PORT = 15900
STACK = "model"
ROLLOUT_S = 600.0  # fetch, then load the model on a busy 2-core machine


@contextlib.contextmanager
def _forward(upstream_url: str, port: int) -> Iterator[str]:
    """A host service as the node's pods reach it: a forwarder on the node's gateway."""
    upstream = upstream_url.removeprefix("http://").rstrip("/")
    forward = subprocess.Popen(
        ["socat", f"TCP-LISTEN:{port},bind={GATEWAY},fork,reuseaddr", f"TCP:{upstream}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield f"http://{GATEWAY}:{port}"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


@pytest.fixture(scope="module")
def pod_mlflow_url(mlflow_url: str, real_node: str) -> Iterator[str]:
    """The registry as the node's pods reach it."""
    with _forward(mlflow_url, FORWARD_PORT) as url:
        yield url


@pytest.fixture
def pod_s3_endpoint(s3: S3Server, real_node: str) -> Iterator[str]:
    """The local S3 API as the node's pods reach it."""
    with _forward(s3.endpoint, S3_FORWARD_PORT) as url:
        yield url


@pytest.fixture(scope="module")
def registry(mlflow_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Version 1 and 2 (the wheel's models; 2 with a capitals dictionary), and version 3 whose
    manifest names a rec.onnx other than the one it holds."""
    client = Registry(mlflow_url, f"ocr-node-{uuid.uuid4().hex[:8]}")
    root = tmp_path_factory.mktemp("versions")
    first, second = model_versions(root)
    bad = root / "v3"
    shutil.copytree(second, bad)
    write_manifest(bad, "invoices-ppocr", "3")
    manifest = json.loads((bad / "MANIFEST.json").read_text())
    manifest["files"]["rec.onnx"] = "0" * 64
    (bad / "MANIFEST.json").write_text(json.dumps(manifest))
    assert [client.publish(folder)[0] for folder in (first, second, bad)] == ["1", "2", "3"]
    client.alias("champion", "1")
    yield client
    client.close()


def _spec(
    namespace: str, tracking: str, model_uri: str, *, source: dict[str, Any] | None = None
) -> OCRServingSpec:
    spec: dict[str, Any] = example_resource("standard")["spec"]
    spec.pop("redis")
    spec["api"]["limits"] = {}
    prefix = f"{namespace}-{STACK}"
    spec["kafka"]["topics"] = {
        "jobs": f"{prefix}-jobs", "results": f"{prefix}-results", "deadLetter": f"{prefix}-dlq"
    }  # fmt: skip
    toleration = {"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
    spec["worker"] = {
        "replicas": 1,
        "image": IMAGE,
        "nodeSelector": NODE_SELECTOR,
        "tolerations": [toleration],
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}},
    }
    mlflow = {"mlflow": {"modelUri": model_uri, "trackingUri": tracking}}
    spec["engine"]["model"] = mlflow if source is None else source
    spec["networkPolicy"] = {"enabled": False}
    return OCRServingSpec.model_validate(spec)


def _apply_worker(kube: Kube, spec: OCRServingSpec, model: ResolvedModel) -> None:
    """The stack's ConfigMap and worker Deployment as the operator renders them."""
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    manifests = render(spec, Instance(STACK, kube.namespace), plan, model=model)
    wanted = [
        m.body
        for m in manifests
        if m.kind is Kind.CONFIG_MAP
        or (m.kind is Kind.DEPLOYMENT and m.component is Component.WORKER)
    ]
    kube.apply(*wanted)


def _worker_pods(kube: Kube) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = kube.get(
        "pods", "-l", f"app.kubernetes.io/instance={STACK},app.kubernetes.io/component=worker"
    )["items"]
    return pods


def _served(kube: Kube, ref: str) -> dict[str, Any] | None:
    """/readyz of the Ready worker pod whose template names `ref`."""
    for pod in _worker_pods(kube):
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions", [])
        )
        if ready and pod["metadata"]["annotations"].get(ANNOTATION_MODEL) == ref:
            with (
                kube.port_forward(f"pod/{pod['metadata']['name']}", 8000) as port,
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer,
            ):
                body: dict[str, Any] = json.load(answer)
                return body
    return None


async def _resolve(tracking: str, model_uri: str) -> ResolvedModel:
    return await MlflowRegistry().resolve(
        MlflowModelRef(model_uri=model_uri, tracking_uri=tracking)
    )


def _prepare(kube: Kube, spec: OCRServingSpec, kafka_bootstrap: str) -> None:
    """What the stack needs besides the worker: its topics (it is Ready only once it
    consumes, and it waits for both) and the database Secret."""
    names = (spec.kafka.topics.jobs, spec.kafka.topics.dead_letter)
    topics = [TopicRequest(name, 1, 1, {}) for name in names]
    asyncio.run(KafkaTopicAdmin().ensure(kafka_bootstrap, topics))
    database = {"url": "mysql+aiomysql://ocr:ocr@mariadb.ocr.svc:3306/ocr"}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ocr-database"}}
    kube.apply({**secret, "stringData": database})


def test_the_worker_serves_the_alias_and_a_bad_version_never_replaces_it(
    kube: Kube, registry: Registry, pod_mlflow_url: str, kafka_bootstrap: str
) -> None:
    alias = f"models:/{registry.model}/champion"
    spec = _spec(kube.namespace, pod_mlflow_url, alias)
    _prepare(kube, spec, kafka_bootstrap)

    first = asyncio.run(_resolve(pod_mlflow_url, alias))
    _apply_worker(kube, spec, first)
    kube.wait_ready(f"deployment/{STACK}-worker", timeout=ROLLOUT_S)
    body = wait_for("version 1 served", lambda: _served(kube, first.ref))
    assert body["status"] == "ready", body
    assert (body["model"]["name"], body["model"]["version"]) == ("invoices-ppocr", "1")

    registry.alias("champion", "2")
    second = asyncio.run(_resolve(pod_mlflow_url, alias))
    assert second.version == "2"
    _apply_worker(kube, spec, second)
    kube.wait_ready(f"deployment/{STACK}-worker", timeout=ROLLOUT_S)
    body = wait_for("version 2 served", lambda: _served(kube, second.ref))
    assert body["model"]["version"] == "2"

    bad = asyncio.run(_resolve(pod_mlflow_url, f"models:/{registry.model}/3"))
    _apply_worker(kube, spec, bad)

    def refused() -> Any:
        causes = [c for c in pod_causes(_worker_pods(kube)) if c.reason is Reason.MODEL_REFUSED]
        return causes[0] if causes else None

    cause = wait_for("the init container to refuse version 3", refused, timeout=ROLLOUT_S)
    assert "container fetch-model: model refused: /models/rec.onnx: checksum mismatch" in (
        cause.message
    )
    # The old pod still serves version 2: the rollout stopped at the new pod.
    body = wait_for("version 2 still served", lambda: _served(kube, second.ref))
    assert body["model"]["version"] == "2"
    worker = kube.get("deployment", f"{STACK}-worker")
    assert worker["status"].get("availableReplicas") == 1


@pytest.fixture
def claim(kube: Kube) -> Iterator[tuple[str, Path]]:
    """(claim name, the folder on the node it holds): a hostPath PersistentVolume (the real
    node is this machine) bound to a claim in the test's namespace."""
    folder = Path(tempfile.mkdtemp(prefix="ocr-model-claim-", dir="/tmp"))
    folder.chmod(0o755)  # the pods run as uid 10001
    volume = f"ocr-model-{uuid.uuid4().hex[:8]}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(folder), "type": "Directory"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "models"},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    try:
        yield "models", folder
    finally:
        kube.run("delete", "pvc", "models", "--wait=false")
        kube.run("delete", "pv", volume, "--wait=false")
        shutil.rmtree(folder, ignore_errors=True)


def test_a_claim_serves_its_folder_read_only(
    kube: Kube, claim: tuple[str, Path], kafka_bootstrap: str
) -> None:
    name, folder = claim
    onnx_model_dir(folder / "releases" / "7", cls=False, manifest=False)
    write_manifest(folder / "releases" / "7", "claimed-ppocr", "7")
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    uri = f"pvc://{name}/releases/7"
    spec = _spec(kube.namespace, "", uri, source={"uri": uri})
    _prepare(kube, spec, kafka_bootstrap)
    model = static_resolution(spec.engine.model, spec.engine.model_version)
    assert model is not None
    _apply_worker(kube, spec, model)
    kube.wait_ready(f"deployment/{STACK}-worker", timeout=ROLLOUT_S)
    body = wait_for("the claimed model served", lambda: _served(kube, model.ref))
    assert (body["model"]["name"], body["model"]["version"]) == ("claimed-ppocr", "7")
    pod = _worker_pods(kube)[0]["spec"]
    assert "initContainers" not in pod  # nothing fetched: the claim is mounted
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True


def test_a_worker_fetches_its_model_from_s3_signed_with_the_secret_keys(
    kube: Kube, s3: S3Server, pod_s3_endpoint: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    folder = tmp_path / "v5"
    onnx_model_dir(folder, cls=False, manifest=False)
    write_manifest(folder, "s3-ppocr", "5")
    bucket = Bucket(s3)
    location = bucket.put_folder(folder, f"node-{uuid.uuid4().hex[:8]}/v5")
    keys = {"AWS_ACCESS_KEY_ID": s3.access_key_id, "AWS_SECRET_ACCESS_KEY": s3.secret_access_key}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "model-s3"}}
    kube.apply({**secret, "stringData": keys})
    access = {"endpoint": pod_s3_endpoint, "credentialsSecretRef": {"name": "model-s3"}}
    spec = _spec(kube.namespace, "", location, source={"uri": location, "s3": access})
    _prepare(kube, spec, kafka_bootstrap)
    model = static_resolution(spec.engine.model, spec.engine.model_version)
    assert model is not None
    try:
        _apply_worker(kube, spec, model)
        kube.wait_ready(f"deployment/{STACK}-worker", timeout=ROLLOUT_S)
        body = wait_for("the S3 model served", lambda: _served(kube, model.ref))
        assert (body["model"]["name"], body["model"]["version"]) == ("s3-ppocr", "5")
        [init] = _worker_pods(kube)[0]["spec"]["initContainers"]
        env = {e["name"]: e for e in init["env"]}
        # the key pair reaches the pod only through the Secret
        assert "value" not in env["OCR_MODEL_S3_SECRET_ACCESS_KEY"]
        assert env["OCR_MODEL_S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == (
            "model-s3"
        )
    finally:
        bucket.delete_written()
