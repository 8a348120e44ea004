"""End to end on the local control plane (kwok pods) with the real MLflow registry: the
operator, running under kopf in this process, resolves an alias to its version, reports it
in status and in `kubectl get ocrs -o wide`, and rolls the workers when the alias moves.
The CEL rules of spec.engine.model are checked by the apiserver itself."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf.testing import KopfRunner

from ocr_operator.handlers import register
from ocr_operator.settings import OperatorSettings
from tests.operator._cluster import condition, get, install_crds, kubectl, wait_for
from tests.operator._examples import ROOT, example_resource
from tests.operator._mlflow import Registry

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

NAME = "registry"


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-model-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def registry(mlflow_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Two versions of a registered model; kwok runs no container, so small files do."""
    client = Registry(mlflow_url, f"ocr-e2e-{uuid.uuid4().hex[:8]}")
    root = tmp_path_factory.mktemp("versions")
    for version in ("1", "2"):
        folder = root / version
        folder.mkdir()
        (folder / "MANIFEST.json").write_text(json.dumps({"name": "m", "version": version}))
        client.publish(folder)
    client.alias("champion", "1")
    yield client
    client.close()


def _resource(namespace: str, model: dict[str, Any]) -> dict[str, Any]:
    resource = copy.deepcopy(example_resource("standard"))
    resource["metadata"] = {"name": NAME}
    resource["spec"]["engine"] = {"kind": "onnx", "model": model}
    prefix = f"{namespace}-{NAME}"
    resource["spec"]["kafka"]["topics"] = {
        "jobs": f"{prefix}-jobs",
        "results": f"{prefix}-results",
        "deadLetter": f"{prefix}-dlq",
    }
    resource["spec"]["kafka"]["management"] = "External"
    resource["spec"]["api"] = {"replicas": 1}
    return resource


def _apply(namespace: str, resource: dict[str, Any], *, check: bool = True) -> str:
    return kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(resource), check=check
    )  # fmt: skip


def test_the_apiserver_refuses_bad_model_sources_with_readable_messages(namespace: str) -> None:
    cases: dict[str, dict[str, Any]] = {
        "engine.model.uri must start with https://, http://, s3:// or pvc://": {
            "uri": "ftp://host/m.tgz"
        },
        "names a .tar.gz or .tgz archive": {"uri": "https://example.com/model.zip"},
        "set uri or mlflow, not both": {
            "uri": "https://example.com/m.tgz",
            "mlflow": {"modelUri": "models:/m/1", "trackingUri": "http://mlflow:5000"},
        },
        "mlflow.modelUri must be models:/<name>/<version or alias>": {
            "mlflow": {"modelUri": "runs:/abc/model", "trackingUri": "http://mlflow:5000"}
        },
    }
    for message, model in cases.items():
        out = kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-",
            stdin=yaml.safe_dump(_resource(namespace, model)), check=False,
        )  # fmt: skip
        assert message in out, out


def _worker_model(namespace: str) -> str | None:
    worker = get("deployment", f"{NAME}-worker", namespace)
    if worker is None:
        return None
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    return str(annotations.get("ocrserving.io/model", ""))


def test_the_alias_is_resolved_reported_and_followed(
    namespace: str, registry: Registry, mlflow_url: str, kafka_bootstrap: str
) -> None:
    settings = OperatorSettings(
        kafka_bootstrap=kafka_bootstrap, resync_seconds=3, wait_seconds=1, error_backoff_seconds=2
    )
    kopf_registry = kopf.OperatorRegistry()
    register(kopf_registry, settings)
    model = {
        "mlflow": {"modelUri": f"models:/{registry.model}@champion", "trackingUri": mlflow_url}
    }
    args = ["run", "--standalone", "--namespace", namespace]
    with KopfRunner(args, registry=kopf_registry, timeout=60) as runner:
        _apply(namespace, _resource(namespace, model))
        first = f"models:/{registry.model}/1"
        wait_for(lambda: _worker_model(namespace) == first or None, "worker on version 1")
        resource = get("ocrs", NAME, namespace)
        assert resource is not None
        assert resource["status"]["model"]["version"] == "1"
        assert resource["status"]["model"]["location"].startswith("mlflow-artifacts:/")
        worker = get("deployment", f"{NAME}-worker", namespace)
        assert worker is not None
        init = worker["spec"]["template"]["spec"]["initContainers"][0]
        assert init["args"][:2] == ["fetch-model", "--from"]
        assert init["args"][-2:] == ["--tracking-uri", mlflow_url]
        wide = kubectl("get", "ocrs", NAME, "-n", namespace, "-o", "wide").splitlines()
        assert "MODEL" in wide[0].split()  # (empty columns make the row's split ragged)
        assert first in wide[1].split()

        registry.alias("champion", "2")  # the next resync rolls the workers
        second = f"models:/{registry.model}/2"
        wait_for(lambda: _worker_model(namespace) == second or None, "worker on version 2")

        registry.alias("gone", "1")
        gone = {"mlflow": {"modelUri": f"models:/{registry.model}@nope", "trackingUri": mlflow_url}}
        _apply(namespace, _resource(namespace, gone))

        def unresolved() -> dict[str, Any] | None:
            degraded = condition(get("ocrs", NAME, namespace), "Degraded")
            return degraded if degraded.get("reason") == "ModelUnresolved" else None

        degraded = wait_for(unresolved, "Degraded ModelUnresolved")
        assert "has no alias nope of registered model" in degraded["message"]
        # Nothing applied meanwhile: the workers stay on the version they serve.
        assert _worker_model(namespace) == second
        kubectl("delete", "ocrs", NAME, "-n", namespace, "--wait=true", "--timeout=90s")
    assert runner.exception is None
