"""On the local apiserver: the CEL rules that pair an s3:// engine.model.uri with
engine.model.s3, the worker Deployment with its s3 init container (the keys as Secret
references) accepted by a server-side dry run, and the OCR_MODEL_S3_* names refused in the
pods' extra env."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocr_operator.model import Component, OCRServingSpec
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from tests.operator._cluster import install_crds, kubectl
from tests.operator._examples import ROOT, example_resource

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

ENDPOINT = "http://minio.storage.svc:9000"
URI = "s3://ocr-models/invoices/v2/"
ACCESS = {"endpoint": ENDPOINT, "credentialsSecretRef": {"name": "model-bucket"}}


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-models3-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _resource(name: str, model: dict[str, Any]) -> dict[str, Any]:
    resource = copy.deepcopy(example_resource("standard"))
    resource["metadata"] = {"name": name}
    resource["spec"]["engine"] = {"kind": "onnx", "model": model}
    return resource


def _dry_run(namespace: str, document: dict[str, Any]) -> str:
    return kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-",
        stdin=yaml.safe_dump(document), check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"uri": URI}, "an s3:// engine.model.uri needs engine.model.s3.endpoint"),
        (
            {"uri": "https://models.example.com/m.tgz", "s3": ACCESS},
            "engine.model.s3 goes with an s3:// engine.model.uri",
        ),
        ({"s3": ACCESS}, "engine.model.s3 goes with an s3:// engine.model.uri"),
        (
            {"uri": "s3://ocr-models/model.zip", "s3": ACCESS},
            "an s3 engine.model.uri is s3://<bucket>/<key> naming a .tar.gz or .tgz archive",
        ),
        ({"uri": "s3://Models/m.tgz", "s3": ACCESS}, "an s3 engine.model.uri is s3://<bucket>"),
        ({"uri": "ftp://host/m.tgz"}, "must start with https://, http://, s3:// or pvc://"),
    ],
)
def test_the_apiserver_refuses_unpaired_s3_sources(
    namespace: str, model: dict[str, Any], message: str
) -> None:
    out = _dry_run(namespace, _resource("refused", model))
    assert message in out, out


@pytest.mark.parametrize(
    "model",
    [
        {"uri": URI, "s3": ACCESS},
        {"uri": "s3://ocr-models/v2.tar.gz", "s3": {"endpoint": "https://s3.example.com"}},
    ],
)
def test_the_apiserver_accepts_s3_sources(namespace: str, model: dict[str, Any]) -> None:
    out = _dry_run(namespace, _resource("accepted", model))
    assert "created (server dry run)" in out, out


def test_the_rendered_worker_with_secret_backed_keys_passes_the_apiserver(namespace: str) -> None:
    resource = _resource("s3-worker", {"uri": URI, "s3": ACCESS})
    spec = OCRServingSpec.model_validate(resource["spec"])
    manifests = render(
        spec, Instance("s3-worker", namespace), plan_transition(spec.architecture.mode, Observed())
    )
    worker = next(
        m for m in manifests if m.kind is Kind.DEPLOYMENT and m.component is Component.WORKER
    )
    out = _dry_run(namespace, worker.body)
    assert "created (server dry run)" in out, out
    (init,) = worker.body["spec"]["template"]["spec"]["initContainers"]
    secret_refs = [e["valueFrom"]["secretKeyRef"] for e in init["env"] if "valueFrom" in e]
    assert secret_refs == [
        {"name": "model-bucket", "key": "AWS_ACCESS_KEY_ID"},
        {"name": "model-bucket", "key": "AWS_SECRET_ACCESS_KEY"},
    ]


def test_pod_env_may_not_set_what_the_s3_source_renders(namespace: str) -> None:
    resource = _resource("env", {"uri": URI, "s3": ACCESS})
    resource["spec"]["worker"]["env"] = [{"name": "OCR_MODEL_S3_SECRET_ACCESS_KEY", "value": "x"}]
    out = _dry_run(namespace, resource)
    assert "OCR_MODEL_S3_SECRET_ACCESS_KEY" in out and "the operator renders them" in out, out
