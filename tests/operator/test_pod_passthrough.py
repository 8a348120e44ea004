"""Pod passthrough (spec.{api,worker,writer}): identity, scheduling classes, affinity,
metadata, extra env, volumes and mounts; resources as quantities of any resource name."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ocr_operator.model import OCRServingSpec
from ocr_operator.render import (
    Instance,
    Kind,
    Observed,
    migration_job,
    plan_transition,
    render,
)
from tests.operator._fakes import spec as _spec

INSTANCE = Instance("demo", "ocr")

WORKER: dict[str, Any] = {
    "serviceAccountName": "ocr-gpu",
    "runtimeClassName": "nvidia",
    "priorityClassName": "inference",
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A100"]}
                        ]
                    }
                ]
            }
        }
    },
    "podAnnotations": {"sidecar.istio.io/inject": "false", "ocrserving.io/mode": "forged"},
    "podLabels": {"team": "ocr", "app.kubernetes.io/component": "forged"},
    "env": [
        {"name": "OCR_PDF_DPI", "value": "150"},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ],
    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "ocr-models"}}],
    "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
    "resources": {"requests": {"cpu": 2, "memory": "4Gi"}, "limits": {"memory": "6Gi"}},
    "gpus": 1,
    "gpuResourceName": "nvidia.com/mig-1g.10gb",
}


def _model(**extra: Any) -> OCRServingSpec:
    return OCRServingSpec.model_validate(_spec("Standard", **extra))


def _pod(spec: OCRServingSpec, component: str) -> dict[str, Any]:
    manifests = render(spec, INSTANCE, plan_transition(spec.architecture.mode, Observed()))
    body = next(m.body for m in manifests if m.key == (Kind.DEPLOYMENT, f"demo-{component}"))
    template: dict[str, Any] = body["spec"]["template"]
    return template


def test_worker_passthrough_reaches_the_pod_template() -> None:
    spec = _model(worker=WORKER, engine={"device": "gpu"})
    template = _pod(spec, "worker")
    pod = template["spec"]
    assert pod["serviceAccountName"] == "ocr-gpu"
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["priorityClassName"] == "inference"
    assert pod["automountServiceAccountToken"] is False  # still no token in the pod
    affinity = pod["affinity"]
    assert affinity["nodeAffinity"] == WORKER["affinity"]["nodeAffinity"]
    assert "podAntiAffinity" in affinity  # availability's policy stays beside it
    assert pod["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "models", "persistentVolumeClaim": {"claimName": "ocr-models"}},
    ]
    (container,) = pod["containers"]
    assert container["volumeMounts"][1] == {
        "name": "models",
        "mountPath": "/models",
        "readOnly": True,
    }
    env = {e["name"]: e for e in container["env"]}
    assert env["OCR_PDF_DPI"] == {"name": "OCR_PDF_DPI", "value": "150"}
    assert env["NODE"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert container["env"][0]["name"] == "OCR_MODE"  # the operator's first
    # The operator's labels and annotations win over the spec's extra ones.
    labels, annotations = template["metadata"]["labels"], template["metadata"]["annotations"]
    assert labels["team"] == "ocr"
    assert labels["app.kubernetes.io/component"] == "worker"
    assert annotations["sidecar.istio.io/inject"] == "false"
    assert annotations["ocrserving.io/mode"] == "Standard"


def test_resources_are_quantities_and_the_gpu_is_any_extended_resource() -> None:
    spec = _model(worker=WORKER, engine={"device": "gpu"})
    resources = _pod(spec, "worker")["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/mig-1g.10gb": "1"},
        "limits": {"memory": "6Gi", "nvidia.com/mig-1g.10gb": "1"},
    }
    assert "nvidia.com/gpu" not in str(resources)
    extended = _model(api={"resources": {"requests": {"ephemeral-storage": "1Gi", "cpu": "250m"}}})
    api = _pod(extended, "api")["spec"]["containers"][0]["resources"]
    assert api["requests"] == {"memory": "256Mi", "ephemeral-storage": "1Gi", "cpu": "250m"}


def test_a_spec_pod_anti_affinity_replaces_the_availability_policy() -> None:
    own: dict[str, list[Any]] = {"preferredDuringSchedulingIgnoredDuringExecution": []}
    spec = _model(api={"affinity": {"podAntiAffinity": own}})
    assert _pod(spec, "api")["spec"]["affinity"] == {"podAntiAffinity": own}


def test_unset_passthrough_renders_nothing_new() -> None:
    pod = _pod(_model(), "api")["spec"]
    for key in ("serviceAccountName", "runtimeClassName", "priorityClassName"):
        assert key not in pod
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]


def test_the_migration_job_shares_the_api_identity_env_and_volumes() -> None:
    api = {key: WORKER[key] for key in ("serviceAccountName", "env", "volumes", "volumeMounts")}
    api["podAnnotations"] = {"sidecar.istio.io/inject": "false"}
    job = migration_job(_model(api=api), INSTANCE).body["spec"]["template"]
    assert job["spec"]["serviceAccountName"] == "ocr-gpu"
    assert job["spec"]["volumes"][1]["name"] == "models"
    container = job["spec"]["containers"][0]
    assert [e["name"] for e in container["env"]] == ["OCR_DATABASE_URL", "OCR_PDF_DPI", "NODE"]
    assert container["volumeMounts"][1]["mountPath"] == "/models"
    assert job["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"


@pytest.mark.parametrize(
    "bad",
    [
        {"resources": {"requests": {"cpu": "lots"}}},
        {"resources": {"requests": {"bad name!": "1"}}},
        {"gpuResourceName": "Not A Resource"},
        {"env": [{"name": "1X", "value": "v"}]},
    ],
)
def test_the_model_refuses_malformed_passthrough(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _model(worker=bad)
