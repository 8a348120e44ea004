"""spec.engine.model with an s3:// uri: the rules that pair it with engine.model.s3, and the
init container that reads the bucket with the endpoint and region as values and the key
pair from the Secret (never as literals)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ocr_contract import Env
from ocr_operator.crd import openapi_schema
from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.model.model_source import (
    ModelSourceKind,
    S3CredentialsSecretRef,
    S3ModelAccess,
    static_resolution,
)
from ocr_operator.model.pod import RESERVED_ENV
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_operator.render.model import FETCH_CONTAINER, MODEL_MOUNT_PATH
from tests.operator._fakes import spec

ENDPOINT = "http://minio.storage.svc:9000"
URI = "s3://ocr-models/invoices/v2/"
CREDENTIALS = {"name": "model-bucket"}


def _spec(model: dict[str, Any]) -> OCRServingSpec:
    return OCRServingSpec.model_validate(spec("Standard", engine={"model": model}))


def _manifests(spec_: OCRServingSpec) -> dict[tuple[Kind, str], dict[str, Any]]:
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    return {m.key: m.body for m in render(spec_, Instance("demo", "ocr"), plan)}


def _fetch_container(spec_: OCRServingSpec) -> dict[str, Any]:
    worker = _manifests(spec_)[(Kind.DEPLOYMENT, "demo-worker")]
    (init,) = worker["spec"]["template"]["spec"]["initContainers"]
    assert init["name"] == FETCH_CONTAINER
    return dict(init)


@pytest.mark.parametrize(
    "model",
    [
        {"uri": URI, "s3": {"endpoint": ENDPOINT, "credentialsSecretRef": CREDENTIALS}},
        {"uri": "s3://ocr-models/invoices-v2.tar.gz", "s3": {"endpoint": "https://s3.example"}},
        {"uri": "s3://ocr.models/a/MANIFEST.json", "s3": {"endpoint": ENDPOINT}},
    ],
)
def test_s3_sources_validate_with_their_defaults(model: dict[str, Any]) -> None:
    access = _spec(model).engine.model.s3
    assert access is not None
    assert access.endpoint == model["s3"]["endpoint"]
    assert access.region == "us-east-1"
    if access.credentials_secret_ref is not None:
        assert access.credentials_secret_ref == S3CredentialsSecretRef(
            name="model-bucket",
            access_key_id_key="AWS_ACCESS_KEY_ID",
            secret_access_key_key="AWS_SECRET_ACCESS_KEY",
        )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"uri": URI}, "an s3:// engine.model.uri needs engine.model.s3.endpoint"),
        (
            {"uri": "https://models.example.com/m.tgz", "s3": {"endpoint": ENDPOINT}},
            "engine.model.s3 goes with an s3:// engine.model.uri",
        ),
        ({"s3": {"endpoint": ENDPOINT}}, "engine.model.s3 goes with an s3:// engine.model.uri"),
        ({"uri": "s3://ocr-models/model.zip", "s3": {"endpoint": ENDPOINT}}, "s3://<bucket>/<key>"),
        ({"uri": "s3://ocr-models/", "s3": {"endpoint": ENDPOINT}}, "s3://<bucket>/<key>"),
        ({"uri": "s3://Models/m.tgz", "s3": {"endpoint": ENDPOINT}}, "s3://<bucket>/<key>"),
        ({"uri": "s3://ocr-models/a/../b/", "s3": {"endpoint": ENDPOINT}}, "may not contain /../"),
        ({"uri": URI, "s3": {"endpoint": "minio:9000"}}, "endpoint"),
        ({"uri": URI, "s3": {"endpoint": ENDPOINT, "region": "EU West"}}, "region"),
    ],
)
def test_bad_s3_sources_fail_with_the_cel_rules_words(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
        _spec(model)


def test_the_init_container_gets_the_keys_from_the_secret_never_as_literals() -> None:
    model = {
        "uri": URI,
        "s3": {
            "endpoint": ENDPOINT,
            "region": "eu-west-1",
            "credentialsSecretRef": {
                **CREDENTIALS,
                "accessKeyIdKey": "id",
                "secretAccessKeyKey": "k",
            },
        },
    }
    init = _fetch_container(_spec(model))
    assert init["args"] == ["fetch-model", "--from", URI, "--to", MODEL_MOUNT_PATH]
    assert init["env"] == [
        {"name": "OCR_MODEL_S3_ENDPOINT", "value": ENDPOINT},
        {"name": "OCR_MODEL_S3_REGION", "value": "eu-west-1"},
        {
            "name": "OCR_MODEL_S3_ACCESS_KEY_ID",
            "valueFrom": {"secretKeyRef": {"name": "model-bucket", "key": "id"}},
        },
        {
            "name": "OCR_MODEL_S3_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "model-bucket", "key": "k"}},
        },
    ]


def test_without_a_secret_the_init_container_reads_unsigned() -> None:
    init = _fetch_container(_spec({"uri": URI, "s3": {"endpoint": ENDPOINT}}))
    assert [e["name"] for e in init["env"]] == ["OCR_MODEL_S3_ENDPOINT", "OCR_MODEL_S3_REGION"]


def test_only_the_init_container_of_an_s3_source_gets_s3_variables() -> None:
    s3_spec = _spec({"uri": URI, "s3": {"endpoint": ENDPOINT, "credentialsSecretRef": CREDENTIALS}})
    for key, body in _manifests(s3_spec).items():
        template = body.get("spec", {}).get("template", {}).get("spec", {})
        for container in template.get("containers", []):
            assert "OCR_MODEL_S3" not in str(container), key
    https = _spec({"uri": "https://models.example.com/ocr/v2.tar.gz"})
    assert "env" not in _fetch_container(https)


def test_the_worker_may_reach_the_endpoint_port() -> None:
    manifests = _manifests(_spec({"uri": URI, "s3": {"endpoint": ENDPOINT}}))
    egress = manifests[(Kind.NETWORK_POLICY, "demo-worker")]["spec"]["egress"]
    assert {"ports": [{"port": 9000, "protocol": "TCP"}]} in egress
    api_egress = manifests[(Kind.NETWORK_POLICY, "demo-api")]["spec"]["egress"]
    assert {"ports": [{"port": 9000, "protocol": "TCP"}]} not in api_egress
    https = _manifests(_spec({"uri": URI, "s3": {"endpoint": "https://s3.eu-west-1.example"}}))
    https_egress = https[(Kind.NETWORK_POLICY, "demo-worker")]["spec"]["egress"]
    assert {"ports": [{"port": 443, "protocol": "TCP"}]} in https_egress


def test_the_resolution_names_the_folder_and_carries_the_access() -> None:
    spec_ = _spec({"uri": URI, "s3": {"endpoint": ENDPOINT}})
    resolved = static_resolution(spec_.engine.model, "2025.06.1")
    assert resolved is not None
    assert (resolved.source, resolved.name, resolved.location) == (
        ModelSourceKind.URI,
        "v2",
        URI,
    )
    assert resolved.s3 == S3ModelAccess(endpoint=ENDPOINT)
    assert resolved.status().wire()["ref"] == URI


def test_pod_env_may_not_set_what_the_s3_source_renders() -> None:
    names = [e.value for e in Env if e.value.startswith("OCR_MODEL_S3_")]
    assert len(names) == 4
    assert set(names) <= set(RESERVED_ENV)
    worker = openapi_schema()["properties"]["spec"]["properties"]["worker"]["properties"]
    (rule,) = worker["env"]["x-kubernetes-validations"]
    assert all(f"'{name}'" in rule["rule"] and name in rule["message"] for name in names)


def test_only_the_worker_deployment_is_touched() -> None:
    spec_ = _spec({"uri": URI, "s3": {"endpoint": ENDPOINT}})
    plan = plan_transition(Mode.STANDARD, Observed(worker_mode=Mode.STANDARD))
    for manifest in render(spec_, Instance("demo", "ocr"), plan):
        if manifest.kind is Kind.DEPLOYMENT and manifest.component is not Component.WORKER:
            assert "initContainers" not in manifest.body["spec"]["template"]["spec"]
