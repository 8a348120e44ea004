"""spec.api.auth and spec.api.limits: authenticated by default (a generated key Secret), a
named Secret, the explicit opt-out, and the limits in the runtime's environment."""

from __future__ import annotations

import hashlib
from typing import Any

from ocr_operator.api_key_step import API_KEY_RECHECK_SECONDS
from ocr_operator.model import OCRServingSpec
from ocr_operator.ports import KubeError, Owner
from ocr_operator.reconcile import reconcile
from ocr_operator.render import (
    Instance,
    Kind,
    Manifest,
    Observed,
    api_key_secret,
    config_data,
    plan_transition,
    render,
)
from tests.operator._fakes import NAME, NS, UID, FakeKube
from tests.operator._fakes import condition as _condition
from tests.operator._fakes import context as _context
from tests.operator._fakes import spec as _spec

INSTANCE = Instance(NAME, NS)


def _model(**extra: Any) -> OCRServingSpec:
    return OCRServingSpec.model_validate(_spec("Standard", **extra))


def _env(spec: OCRServingSpec, component: str) -> dict[str, Any]:
    manifests = render(spec, INSTANCE, plan_transition(spec.architecture.mode, Observed()))
    body = next(m.body for m in manifests if m.key == (Kind.DEPLOYMENT, f"{NAME}-{component}"))
    container = body["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_api_is_authenticated_by_default_from_the_generated_secret() -> None:
    spec = _model()
    ref = {"secretKeyRef": {"name": f"{NAME}-api-key", "key": "hashes"}}
    assert _env(spec, "api")["OCR_API_KEY_HASHES"] == ref
    assert "OCR_API_KEY_HASHES" not in _env(spec, "worker")  # only the API checks keys
    secret = api_key_secret(spec, INSTANCE, "s3cret")
    assert secret is not None
    assert (secret.kind, secret.name, secret.owned) == (Kind.SECRET, f"{NAME}-api-key", True)
    assert secret.body["stringData"] == {
        "api-key": "s3cret",
        "hashes": hashlib.sha256(b"s3cret").hexdigest(),
    }
    assert secret.body["type"] == "Opaque"
    assert secret.body["metadata"]["labels"]["app.kubernetes.io/instance"] == NAME


def test_a_named_secret_is_referenced_and_none_is_generated() -> None:
    spec = _model(api={"auth": {"apiKeySecretRef": {"name": "team-keys", "key": "digests"}}})
    ref = {"secretKeyRef": {"name": "team-keys", "key": "digests"}}
    assert _env(spec, "api")["OCR_API_KEY_HASHES"] == ref
    assert api_key_secret(spec, INSTANCE, "unused") is None


def test_mode_none_is_an_explicit_opt_out() -> None:
    spec = _model(api={"auth": {"mode": "None"}})
    assert "OCR_API_KEY_HASHES" not in _env(spec, "api")
    assert api_key_secret(spec, INSTANCE, "unused") is None


def test_limits_reach_every_component_through_the_config_map() -> None:
    spec = _model(
        api={"limits": {"rateLimitPerMinute": 7, "maxUploadBytes": 4096, "maxPixels": 1000}},
        redis={"urlSecretRef": {"name": "r"}},
    )
    data = config_data(spec)
    assert data["OCR_RATE_LIMIT_PER_MINUTE"] == "7"
    assert data["OCR_MAX_UPLOAD_BYTES"] == "4096"
    assert data["OCR_MAX_PIXELS"] == "1000"
    defaults = config_data(_model())
    assert (defaults["OCR_MAX_UPLOAD_BYTES"], defaults["OCR_MAX_PIXELS"]) == (
        str(20 * 1024 * 1024),
        "40000000",
    )


async def _settle(kube: FakeKube) -> None:
    await reconcile(_context(kube), NS, NAME)  # the migration Job
    await reconcile(_context(kube), NS, NAME)  # it completed: the Secret, then the workloads


async def test_reconcile_creates_the_key_once_before_the_api_and_never_replaces_it() -> None:
    kube = FakeKube(_spec("Standard"))
    await _settle(kube)
    key = (Kind.SECRET, f"{NAME}-api-key")
    assert kube.created == [key]
    first = kube.objects[key]["stringData"]
    assert kube.objects[key]["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    await reconcile(_context(kube), NS, NAME)
    assert kube.objects[key]["stringData"] == first  # the same key, not a new one each pass
    assert kube.created == [key]
    assert kube.applied.index((Kind.DEPLOYMENT, f"{NAME}-api")) > 0
    assert key not in kube.deleted  # never pruned


async def test_an_existing_secret_of_that_name_is_left_alone() -> None:
    kube = FakeKube(_spec("Standard"))
    mine = {"metadata": {"name": f"{NAME}-api-key"}, "stringData": {"hashes": "b" * 64}}
    kube.objects[(Kind.SECRET, f"{NAME}-api-key")] = mine
    await _settle(kube)
    assert kube.objects[(Kind.SECRET, f"{NAME}-api-key")] == mine
    assert kube.created == []
    assert _condition(kube, "Ready")["status"] == "True"


class _NoSecrets(FakeKube):
    async def create(self, manifest: Manifest, owner: Owner) -> bool:
        raise KubeError(403, 'secrets is forbidden: cannot create resource "secrets"')


async def test_a_refused_secret_is_degraded_with_a_hint_and_no_api_starts() -> None:
    kube = _NoSecrets(_spec("Standard"))
    await _settle(kube)
    degraded = _condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApiKeyUnavailable")
    assert f"Secret {NAME}-api-key" in degraded["message"]
    assert "apiKeySecretRef" in degraded["message"]
    assert (Kind.DEPLOYMENT, f"{NAME}-api") not in kube.objects


async def test_a_deleted_key_secret_comes_back_on_a_later_check_not_every_resync() -> None:
    kube = FakeKube(_spec("Standard"))
    ctx = _context(kube)
    await reconcile(ctx, NS, NAME)
    await reconcile(ctx, NS, NAME)
    key = (Kind.SECRET, f"{NAME}-api-key")
    del kube.objects[key]
    await reconcile(ctx, NS, NAME)
    assert key not in kube.objects  # within the recheck interval: no create call at all
    ctx.api_keys_seen[UID] -= API_KEY_RECHECK_SECONDS + 1
    await reconcile(ctx, NS, NAME)
    assert key in kube.objects
    assert kube.created == [key, key]
