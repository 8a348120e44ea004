"""Least privilege for tenants: the operator's image allow-list, and no takeover of objects
it did not create (unit, and against the apiserver with the operator's real client)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocr_operator.apply import KubeClient
from ocr_operator.reconcile import ReconcileContext, reconcile
from ocr_operator.render import Kind
from ocr_operator.settings import OperatorSettings
from tests.operator._cluster import condition as live_condition
from tests.operator._cluster import get, install_crds, kubectl
from tests.operator._examples import ROOT, example_resource
from tests.operator._fakes import NAME, NS, FakeKube
from tests.operator._fakes import condition as _condition
from tests.operator._fakes import context as _context
from tests.operator._fakes import spec as _spec

ALLOWED = OperatorSettings(allowed_image_prefixes=["ghcr.io/ocr-serving/"])


async def test_an_image_outside_the_allow_list_is_degraded_and_nothing_is_applied() -> None:
    kube = FakeKube(_spec("Standard", worker={"image": "docker.io/evil/miner:latest"}))
    outcome = await reconcile(_context(kube, settings=ALLOWED), NS, NAME)
    degraded = _condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ImageNotAllowed")
    assert "docker.io/evil/miner:latest (worker)" in degraded["message"]
    assert "ghcr.io/ocr-serving/" in degraded["message"]
    assert kube.applied == [] and kube.created == []
    assert outcome.retry_after is None  # a spec change (or an operator restart) retries


async def test_the_default_images_and_an_allowed_override_pass() -> None:
    kube = FakeKube(_spec("Standard", api={"image": "ghcr.io/ocr-serving/ocr-runtime:9-onnx"}))
    await reconcile(_context(kube, settings=ALLOWED), NS, NAME)
    await reconcile(_context(kube, settings=ALLOWED), NS, NAME)
    assert _condition(kube, "Ready")["status"] == "True"


def test_prefixes_match_from_the_start_and_an_empty_list_allows_all() -> None:
    assert ALLOWED.image_allowed("ghcr.io/ocr-serving/ocr-runtime:1-onnx")
    assert not ALLOWED.image_allowed("ghcr.io/ocr-serving-evil/x:1")
    assert not ALLOWED.image_allowed("evil.io/ghcr.io/ocr-serving/x:1")
    assert OperatorSettings().image_allowed("anything:latest")


async def test_an_object_someone_else_created_is_not_taken_over() -> None:
    kube = FakeKube(_spec("Standard"))
    foreign = {"metadata": {"name": f"{NAME}-api", "labels": {"team": "other"}}, "spec": {}}
    kube.objects[(Kind.DEPLOYMENT, f"{NAME}-api")] = foreign
    await reconcile(_context(kube), NS, NAME)
    await reconcile(_context(kube), NS, NAME)
    degraded = _condition(kube, "Degraded")
    assert degraded["reason"] == "ObjectNotOwned"
    assert (
        f"Deployment/{NAME}-api exists and is not owned by this OCRServing" in degraded["message"]
    )
    assert kube.objects[(Kind.DEPLOYMENT, f"{NAME}-api")] is foreign  # untouched


async def test_a_foreign_migration_job_of_that_name_is_not_used() -> None:
    kube = FakeKube(_spec("Standard"))
    await reconcile(_context(kube), NS, NAME)
    (job,) = [key for key in kube.objects if key[0] is Kind.JOB]
    kube.objects[job]["metadata"]["ownerReferences"] = [
        {"kind": "OCRServing", "name": "other", "uid": "uid-2", "controller": True}
    ]
    await reconcile(_context(kube), NS, NAME)
    degraded = _condition(kube, "Degraded")
    assert degraded["reason"] == "ObjectNotOwned"
    assert "(OCRServing/other)" in degraded["message"]


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-tenancy-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _reconcile(namespace: str, name: str) -> None:
    async def run() -> None:
        kube = KubeClient.from_environment()
        try:
            await reconcile(
                ReconcileContext(kube=kube, settings=OperatorSettings()), namespace, name
            )
        finally:
            kube.close()

    asyncio.run(run())


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_no_silent_takeover_on_the_apiserver(namespace: str) -> None:
    """A ConfigMap of the stack's name made by someone else: the operator's reconcile (its real
    client, server-side apply with force) refuses it, names it, and leaves it as it was."""
    kubectl("create", "configmap", "mine-config", "-n", namespace, "--from-literal=keep=me")
    resource: dict[str, Any] = example_resource("standard")
    resource["metadata"] = {"name": "mine"}
    resource["spec"]["kafka"]["management"] = "External"  # no broker involved
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(resource))
    _reconcile(namespace, "mine")
    degraded = live_condition(get("ocrs", "mine", namespace), "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ObjectNotOwned"), degraded
    assert "ConfigMap/mine-config exists and is not owned" in degraded["message"]
    config = get("configmap", "mine-config", namespace)
    assert config is not None
    assert config["data"] == {"keep": "me"}
    assert not config["metadata"].get("ownerReferences")
    assert get("job", "mine-migrate", namespace) is None

    kubectl("delete", "configmap", "mine-config", "-n", namespace)
    _reconcile(namespace, "mine")
    config = get("configmap", "mine-config", namespace)
    assert config is not None and config["metadata"]["ownerReferences"][0]["name"] == "mine"
    degraded = live_condition(get("ocrs", "mine", namespace), "Degraded")
    assert degraded.get("reason") != "ObjectNotOwned"
