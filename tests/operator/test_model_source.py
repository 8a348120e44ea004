"""spec.engine.model: validation, the worker template it renders, the resolution step with a
fake registry, and what reconcile reports (status.model, Degraded causes)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ocr_operator.health import pod_causes
from ocr_operator.model import Component, Mode, OCRServingSpec, Reason
from ocr_operator.model.model_source import MlflowModelRef, ModelSourceKind, ResolvedModel
from ocr_operator.model_step import resolve_model
from ocr_operator.ports import (
    ModelNotFoundError,
    ModelRegistry,
    RegistryUnavailableError,
)
from ocr_operator.reconcile import reconcile
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_operator.render.model import ANNOTATION_MODEL, FETCH_CONTAINER, MODEL_MOUNT_PATH
from tests.operator._fakes import NAME, NS, FakeKube, condition, context, spec

TRACKING = "http://mlflow.mlflow.svc:5000"
INSTANCE = Instance("demo", "ocr")


def _spec(model: dict[str, Any] | None = None) -> OCRServingSpec:
    engine = {"model": model} if model is not None else {}
    return OCRServingSpec.model_validate(spec("Standard", engine=engine))


def _worker(spec_: OCRServingSpec, model: ResolvedModel | None = None) -> dict[str, Any]:
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    manifests = render(spec_, INSTANCE, plan, model=model)
    body: dict[str, Any] = next(
        m.body for m in manifests if m.kind is Kind.DEPLOYMENT and m.component is Component.WORKER
    )
    return body


def _mlflow(version: str, location: str = "mlflow-artifacts:/1/run/artifacts/model") -> Any:
    return ResolvedModel(ModelSourceKind.MLFLOW, "ocr", version, location, TRACKING)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        {},
        {"uri": "https://models.example.com/ocr/v2.tar.gz"},
        {"uri": "http://models.example.com/ocr/v2/"},
        {"uri": "https://models.example.com/ocr/v2/MANIFEST.json"},
        {"uri": "pvc://ocr-models/invoices/v2"},
        {"uri": "pvc://ocr-models"},
        {"mlflow": {"modelUri": "models:/ocr/champion", "trackingUri": TRACKING}},
        {"mlflow": {"modelUri": "models:/ocr@champion", "trackingUri": TRACKING}},
        {"mlflow": {"modelUri": "models:/ocr/3", "trackingUri": TRACKING}},
    ],
)
def test_good_model_sources_validate(model: dict[str, Any]) -> None:
    assert _spec(model).engine.model.wire() == model


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"uri": "ftp://host/model.tar.gz"}, "must start with https://, http://, s3:// or pvc://"),
        ({"uri": "https://example.com/model.zip"}, "names a .tar.gz or .tgz archive"),
        ({"uri": "https://example.com"}, "names a .tar.gz or .tgz archive"),
        ({"uri": "pvc://Not_A_Claim/x"}, "pvc://<claim>/<folder in the claim>"),
        ({"uri": "https://example.com/a/../b/"}, "may not contain /../"),
        (
            {
                "uri": "https://example.com/m.tgz",
                "mlflow": {"modelUri": "models:/ocr/1", "trackingUri": TRACKING},
            },
            "set uri or mlflow, not both",
        ),
        ({"mlflow": {"modelUri": "runs:/abc/model", "trackingUri": TRACKING}}, "models:/<name>"),
        ({"mlflow": {"modelUri": "models:/ocr/1", "trackingUri": "mlflow:5000"}}, "pattern"),
    ],
)
def test_bad_model_sources_fail_with_a_readable_message(
    model: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace(".", r"\.").replace("?", r"\?")):
        _spec(model)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/ocr/7", ("ocr", "7", None)),
        ("models:/ocr/champion", ("ocr", None, "champion")),
        ("models:/ocr@champion", ("ocr", None, "champion")),
    ],
)
def test_models_uri_names_a_version_or_an_alias(
    uri: str, expected: tuple[str, str | None, str | None]
) -> None:
    assert MlflowModelRef(model_uri=uri, tracking_uri=TRACKING).reference() == expected


# --- render ---------------------------------------------------------------------------------


def test_image_source_renders_the_worker_as_before() -> None:
    worker = _worker(_spec())
    pod = worker["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert ANNOTATION_MODEL not in worker["spec"]["template"]["metadata"]["annotations"]
    assert all(e["name"] != "OCR_MODEL_DIR" for e in pod["containers"][0]["env"])


def test_uri_source_fetches_into_an_empty_dir_before_the_worker_starts() -> None:
    uri = "https://models.example.com/ocr/v2.tar.gz"
    worker = _worker(_spec({"uri": uri}))
    template = worker["spec"]["template"]
    pod = template["spec"]
    (init,) = pod["initContainers"]
    main = pod["containers"][0]
    assert init["name"] == FETCH_CONTAINER
    assert init["image"] == main["image"]
    assert init["args"] == ["fetch-model", "--from", uri, "--to", MODEL_MOUNT_PATH]
    assert init["envFrom"] == main["envFrom"]  # OCR_ENGINE: the layout fetch-model checks
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "ocr-model", "emptyDir": {}} in pod["volumes"]
    assert {"name": "ocr-model", "mountPath": "/models", "readOnly": True} in main["volumeMounts"]
    assert {"name": "ocr-model", "mountPath": "/models"} in init["volumeMounts"]
    assert main["env"][0] == {"name": "OCR_MODEL_DIR", "value": "/models"}
    assert template["metadata"]["annotations"][ANNOTATION_MODEL] == uri
    # A model that fails to load stops the rollout with the old pods still serving.
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_pvc_source_mounts_the_claim_read_only_without_fetching() -> None:
    pod = _worker(_spec({"uri": "pvc://ocr-models/invoices/v2"}))["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    volume = {
        "name": "ocr-model",
        "persistentVolumeClaim": {"claimName": "ocr-models", "readOnly": True},
    }
    assert volume in pod["volumes"]
    mount = {
        "name": "ocr-model",
        "mountPath": "/models",
        "readOnly": True,
        "subPath": "invoices/v2",
    }
    assert mount in pod["containers"][0]["volumeMounts"]


def test_only_the_worker_gets_the_model() -> None:
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    for manifest in render(_spec({"uri": "pvc://m/x"}), INSTANCE, plan):
        if manifest.kind is Kind.DEPLOYMENT and manifest.component is not Component.WORKER:
            assert "ocr-model" not in str(manifest.body)


def test_mlflow_source_fetches_the_resolved_version_and_a_new_version_rolls_the_workers() -> None:
    spec_ = _spec({"mlflow": {"modelUri": "models:/ocr/champion", "trackingUri": TRACKING}})
    first = _worker(spec_, _mlflow("3", "mlflow-artifacts:/1/a/artifacts/model"))["spec"]
    (init,) = first["template"]["spec"]["initContainers"]
    assert init["args"] == [
        "fetch-model", "--from", "mlflow-artifacts:/1/a/artifacts/model",
        "--to", "/models", "--tracking-uri", TRACKING,
    ]  # fmt: skip
    assert first["template"]["metadata"]["annotations"][ANNOTATION_MODEL] == "models:/ocr/3"
    assert first["template"]["metadata"]["labels"]["ocrserving.io/model-version"] == "3"
    moved = _worker(spec_, _mlflow("4", "mlflow-artifacts:/1/b/artifacts/model"))["spec"]
    assert moved["template"] != first["template"]
    assert moved["template"]["metadata"]["annotations"][ANNOTATION_MODEL] == "models:/ocr/4"


def test_render_refuses_an_mlflow_source_it_was_not_given_a_version_of() -> None:
    spec_ = _spec({"mlflow": {"modelUri": "models:/ocr/champion", "trackingUri": TRACKING}})
    with pytest.raises(ValueError, match="needs the resolved model version"):
        _worker(spec_)


# --- health ---------------------------------------------------------------------------------


def test_a_refused_model_in_the_init_container_is_the_degraded_cause() -> None:
    message = (
        "model refused: /models/rec.onnx: checksum mismatch (sha256 ab, MANIFEST.json says cd)"
    )
    pod = {
        "metadata": {"name": "demo-worker-1"},
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {
                    "name": "fetch-model",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 4, "message": message}},
                }
            ],
        },
    }
    (cause,) = pod_causes([pod])
    assert cause.reason is Reason.MODEL_REFUSED
    assert cause.message == f"pod demo-worker-1 container fetch-model: {message}"


# --- resolution -----------------------------------------------------------------------------


class FakeRegistry:
    """Aliases of one registry; `down` makes every call fail as an unreachable server does."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases
        self.down = False
        self.calls = 0

    async def resolve(self, ref: MlflowModelRef) -> ResolvedModel:
        self.calls += 1
        if self.down:
            raise RegistryUnavailableError(f"MLflow at {ref.tracking_uri}: connection refused")
        name, version, alias = ref.reference()
        version = version or self.aliases.get(alias or "")
        if version is None:
            raise ModelNotFoundError(f"MLflow at {ref.tracking_uri} has no alias {alias} of {name}")
        return ResolvedModel(
            ModelSourceKind.MLFLOW, name, version, f"mlflow-artifacts:/m/{version}", TRACKING
        )


MLFLOW_SPEC = {"mlflow": {"modelUri": "models:/ocr/champion", "trackingUri": TRACKING}}


async def test_sources_without_a_registry_resolve_without_calling_it() -> None:
    registry = FakeRegistry({})
    resolved = await resolve_model(registry, _spec({"uri": "pvc://m/v2"}), {})
    assert (resolved.source, resolved.name, resolved.location) == (
        ModelSourceKind.URI,
        "v2",
        "pvc://m/v2",
    )
    assert registry.calls == 0


async def test_an_unreachable_registry_keeps_the_version_resolved_last() -> None:
    registry = FakeRegistry({"champion": "3"})
    first = await resolve_model(registry, _spec(MLFLOW_SPEC), {})
    status = {"model": first.status().wire()}
    registry.down = True
    assert await resolve_model(registry, _spec(MLFLOW_SPEC), status) == first
    with pytest.raises(RegistryUnavailableError):
        await resolve_model(registry, _spec(MLFLOW_SPEC), {})  # nothing resolved before


async def test_reconcile_reports_the_resolved_version_and_follows_the_alias() -> None:
    kube = FakeKube(spec("Standard", engine={"model": MLFLOW_SPEC}))
    registry = FakeRegistry({"champion": "3"})
    ctx = context(kube)
    ctx.registry = registry
    await reconcile(ctx, NS, NAME)
    await reconcile(ctx, NS, NAME)
    assert kube.resource["status"]["model"] == {
        "source": "MLflow",
        "name": "ocr",
        "version": "3",
        "ref": "models:/ocr/3",
        "location": "mlflow-artifacts:/m/3",
    }
    assert "models:/ocr/3" in condition(kube, "ModelReady")["message"]
    registry.aliases["champion"] = "4"  # someone moved the alias
    await reconcile(ctx, NS, NAME)
    worker = kube.objects[(Kind.DEPLOYMENT, "demo-worker")]
    assert worker["spec"]["template"]["metadata"]["annotations"][ANNOTATION_MODEL] == (
        "models:/ocr/4"
    )
    assert kube.resource["status"]["model"]["version"] == "4"


async def test_an_unknown_alias_is_degraded_and_applies_nothing() -> None:
    kube = FakeKube(spec("Standard", engine={"model": MLFLOW_SPEC}))
    ctx = context(kube)
    registry: ModelRegistry = FakeRegistry({})
    ctx.registry = registry
    outcome = await reconcile(ctx, NS, NAME)
    assert not outcome.ready
    degraded = condition(kube, "Degraded")
    assert degraded["reason"] == "ModelUnresolved"
    assert "has no alias champion of ocr" in degraded["message"]
    assert (Kind.DEPLOYMENT, "demo-worker") not in kube.objects


def test_the_worker_network_policy_lets_the_init_container_reach_the_model() -> None:
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    model = {"mlflow": {"modelUri": "models:/ocr/champion", "trackingUri": TRACKING}}
    manifests = render(_spec(model), INSTANCE, plan, model=_mlflow("3"))
    policies = {m.name: m.body["spec"] for m in manifests if m.kind is Kind.NETWORK_POLICY}
    to_mlflow = {"ports": [{"port": 5000, "protocol": "TCP"}]}
    assert to_mlflow in policies["demo-worker"]["egress"]
    assert to_mlflow not in policies["demo-api"]["egress"]
    https = render(_spec({"uri": "https://models.example.com/m.tgz"}), INSTANCE, plan)
    worker = next(
        m.body["spec"] for m in https if m.name == "demo-worker" and m.kind is Kind.NETWORK_POLICY
    )
    assert {"ports": [{"port": 443, "protocol": "TCP"}]} in worker["egress"]
