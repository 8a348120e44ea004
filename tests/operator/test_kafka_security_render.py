"""spec.kafka.security in the rendered children: credentials only as secretKeyRef, the CA as
a read-only Secret volume, nothing of it in the ConfigMap or the migration Job, and under
Strimzi a KafkaUser whose ACLs cover this stack's topics and groups and nothing else.

Regenerate the golden file after an intended change:
UPDATE_GOLDEN=1 pytest tests/operator/test_kafka_security_render.py"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import yaml

from ocr_contract import KafkaSecurityProtocol
from ocr_operator.model import Component, Mode, OCRServingSpec
from ocr_operator.render import (
    Instance,
    Kind,
    Manifest,
    Observed,
    migration_job,
    plan_transition,
    render,
)
from ocr_runtime.core.settings import Settings
from tests.operator._examples import ROOT, example_resource

GOLDEN = ROOT / "tests" / "operator" / "golden" / "kafka-security-strimzi.yaml"
INSTANCE = Instance("demo", "ocr")
SECRETS = {
    "username": {"name": "kafka-credentials", "key": "user"},
    "password": {"name": "kafka-credentials", "key": "password"},
}
CA = {"name": "events-cluster-ca-cert"}


def _spec(management: str = "Operator", **security: Any) -> OCRServingSpec:
    resource = copy.deepcopy(example_resource("writer"))
    kafka = resource["spec"]["kafka"]
    kafka["security"] = security
    kafka["management"] = management
    if management == "Strimzi":
        kafka["strimziCluster"] = "events"
    return OCRServingSpec.model_validate(resource["spec"])


def _steady(spec: OCRServingSpec) -> list[Manifest]:
    writer = frozenset({Component.WRITER})
    observed = Observed(worker_mode=Mode.WRITER, present=writer, ready=writer)
    return render(spec, INSTANCE, plan_transition(Mode.WRITER, observed))


def _pods(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return [m.body["spec"]["template"]["spec"] for m in manifests if m.kind is Kind.DEPLOYMENT]


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}


def test_every_pod_gets_secret_refs_and_the_ca_volume_never_literal_credentials() -> None:
    spec = _spec(
        protocol="SASL_SSL",
        saslMechanism="SCRAM-SHA-256",
        usernameSecretRef=SECRETS["username"],
        passwordSecretRef=SECRETS["password"],
        caSecretRef=CA,
    )
    manifests = _steady(spec)
    pods = _pods(manifests)
    assert len(pods) == 3  # api, worker, writer
    for pod in pods:
        env = _env(pod)
        assert env["OCR_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["OCR_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
        assert env["OCR_KAFKA_SASL_USERNAME"] == {"secretKeyRef": SECRETS["username"]}
        assert env["OCR_KAFKA_SASL_PASSWORD"] == {"secretKeyRef": SECRETS["password"]}
        assert env["OCR_KAFKA_SSL_CA_FILE"] == "/etc/ocr/kafka-ca/ca.crt"
        volume = next(v for v in pod["volumes"] if v["name"] == "kafka-ca")
        assert volume["secret"] == {
            "secretName": CA["name"],
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "kafka-ca")
        assert mount == {"name": "kafka-ca", "mountPath": "/etc/ocr/kafka-ca", "readOnly": True}
    config = next(m for m in manifests if m.kind is Kind.CONFIG_MAP).body["data"]
    assert not any(key.startswith(("OCR_KAFKA_SASL", "OCR_KAFKA_SSL")) for key in config)
    assert "OCR_KAFKA_SECURITY_PROTOCOL" not in config  # the migration Job shares it
    assert all(m.kind is not Kind.KAFKA_USER for m in manifests)  # not under Strimzi


def test_the_migration_job_gets_no_kafka_settings() -> None:
    spec = _spec(
        protocol="SASL_SSL",
        usernameSecretRef=SECRETS["username"],
        passwordSecretRef=SECRETS["password"],
        caSecretRef=CA,
    )
    pod = migration_job(spec, INSTANCE).body["spec"]["template"]["spec"]
    assert not [name for name in _env(pod) if name.startswith("OCR_KAFKA")]
    assert all(v["name"] != "kafka-ca" for v in pod["volumes"])


def test_strimzi_renders_a_kafka_user_scoped_to_the_stack() -> None:
    manifests = _steady(_spec("Strimzi", protocol="SASL_SSL", caSecretRef=CA))
    kinds = [m.kind for m in manifests]
    user = next(m for m in manifests if m.kind is Kind.KAFKA_USER)
    assert kinds.index(Kind.KAFKA_USER) < kinds.index(Kind.DEPLOYMENT)
    assert user.name == "demo-kafka" and user.owned
    assert user.body["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert user.body["metadata"]["labels"]["strimzi.io/cluster"] == "events"
    spec = user.body["spec"]
    assert spec["authentication"] == {"type": "scram-sha-512"}
    assert spec["authorization"]["type"] == "simple"
    granted = {
        (acl["resource"]["type"], acl["resource"]["name"], acl["resource"]["patternType"], op)
        for acl in spec["authorization"]["acls"]
        for op in acl["operations"]
    }
    topics = {"ocr-jobs", "ocr-results", "ocr-jobs-dlq"}
    groups = {"ocr-workers", "ocr-writers"}
    assert granted == {
        *{("topic", t, "literal", op) for t in topics for op in ("Describe", "Read", "Write")},
        *{("group", g, "literal", op) for g in groups for op in ("Describe", "Read")},
    }
    for pod in _pods(manifests):
        env = _env(pod)
        assert env["OCR_KAFKA_SASL_USERNAME"] == "demo-kafka"
        assert env["OCR_KAFKA_SASL_PASSWORD"] == {
            "secretKeyRef": {"name": "demo-kafka", "key": "password"}
        }


def test_strimzi_with_credentials_of_its_own_renders_no_kafka_user() -> None:
    spec = _spec(
        "Strimzi",
        protocol="SASL_SSL",
        usernameSecretRef=SECRETS["username"],
        passwordSecretRef=SECRETS["password"],
    )
    assert all(m.kind is not Kind.KAFKA_USER for m in _steady(spec))


def test_no_security_renders_nothing_of_it() -> None:
    spec = OCRServingSpec.model_validate(example_resource("writer")["spec"])
    for pod in _pods(_steady(spec)):
        assert not [n for n in _env(pod) if n.startswith(("OCR_KAFKA_SASL", "OCR_KAFKA_SEC"))]
        assert all(v["name"] != "kafka-ca" for v in pod["volumes"])


def test_secured_strimzi_render_matches_golden() -> None:
    spec = _spec("Strimzi", protocol="SASL_SSL", caSecretRef=CA)
    text = yaml.safe_dump_all([m.body for m in _steady(spec)], sort_keys=True)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert GOLDEN.read_text() == text


def test_rendered_security_env_parses_into_runtime_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = _spec(
        protocol="SASL_SSL",
        usernameSecretRef=SECRETS["username"],
        passwordSecretRef=SECRETS["password"],
    )
    resolved = {("kafka-credentials", "user"): "stack-a", ("kafka-credentials", "password"): "pw"}
    for key in [k for k in os.environ if k.startswith("OCR_")]:
        monkeypatch.delenv(key)
    for item in _pods(_steady(spec))[0]["containers"][0]["env"]:
        if item["name"].startswith("OCR_KAFKA"):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            value = item["value"] if ref is None else resolved[(ref["name"], ref["key"])]
            monkeypatch.setenv(item["name"], value)
    settings = Settings()
    assert settings.kafka_security_protocol is KafkaSecurityProtocol.SASL_SSL
    assert settings.kafka_sasl_username == "stack-a"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "pw"


KEDA_WORKERS = {"enabled": True, "provider": "KEDA", "minReplicas": 0, "maxReplicas": 3}


def _keda_spec(management: str = "Operator", **security: Any) -> OCRServingSpec:
    resource: dict[str, Any] = _spec(management, **security).wire()
    resource["worker"]["autoscaling"] = KEDA_WORKERS
    return OCRServingSpec.model_validate(resource)


def _by_kind(manifests: list[Manifest], kind: Kind) -> list[dict[str, Any]]:
    return [m.body for m in manifests if m.kind is kind]


def test_keda_reads_the_lag_with_the_stack_kafka_user_under_strimzi() -> None:
    manifests = _steady(_keda_spec("Strimzi", protocol="SASL_SSL", caSecretRef=CA))
    kinds = [m.kind for m in manifests]
    assert kinds.index(Kind.TRIGGER_AUTHENTICATION) < kinds.index(Kind.SCALED_OBJECT)
    [auth] = _by_kind(manifests, Kind.TRIGGER_AUTHENTICATION)
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "demo-kafka", "key": "password"},
        {"parameter": "ca", "name": CA["name"], "key": "ca.crt"},
    ]
    [username] = auth["spec"]["env"]
    # the variable KEDA reads is a plain value on the scale target's worker container
    worker = next(p for p in _pods(manifests) if p["containers"][0]["name"] == "worker")
    assert username["containerName"] == "worker"
    assert _env(worker)[username["name"]] == "demo-kafka"
    [scaled] = _by_kind(manifests, Kind.SCALED_OBJECT)
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["metadata"]["sasl"] == "scram_sha512"
    assert trigger["metadata"]["tls"] == "enable"
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}


def test_keda_takes_the_credentials_the_spec_names() -> None:
    manifests = _steady(
        _keda_spec(
            protocol="SASL_PLAINTEXT",
            saslMechanism="SCRAM-SHA-256",
            usernameSecretRef=SECRETS["username"],
            passwordSecretRef=SECRETS["password"],
        )
    )
    [auth] = _by_kind(manifests, Kind.TRIGGER_AUTHENTICATION)
    assert auth["spec"] == {
        "secretTargetRef": [
            {"parameter": "username", **SECRETS["username"]},
            {"parameter": "password", **SECRETS["password"]},
        ]
    }
    [scaled] = _by_kind(manifests, Kind.SCALED_OBJECT)
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    assert metadata["sasl"] == "scram_sha256" and "tls" not in metadata


def test_keda_without_kafka_security_or_without_keda_gets_no_trigger_authentication() -> None:
    plain = _steady(_keda_spec())
    assert _by_kind(plain, Kind.TRIGGER_AUTHENTICATION) == []
    [trigger] = _by_kind(plain, Kind.SCALED_OBJECT)[0]["spec"]["triggers"]
    assert "authenticationRef" not in trigger and "sasl" not in trigger["metadata"]
    secured_hpa = _steady(_spec("Strimzi", protocol="SASL_SSL"))
    assert _by_kind(secured_hpa, Kind.TRIGGER_AUTHENTICATION) == []
    # TLS with the system CAs: the scaler only needs to be told to use TLS
    tls_only = _steady(_keda_spec(protocol="SSL"))
    assert _by_kind(tls_only, Kind.TRIGGER_AUTHENTICATION) == []
    assert _by_kind(tls_only, Kind.SCALED_OBJECT)[0]["spec"]["triggers"][0]["metadata"]["tls"] == (
        "enable"
    )


CLIENT_CERT = {"name": "stack-a-tls"}


def test_a_client_certificate_is_mounted_owner_and_group_only_and_named_in_env() -> None:
    spec = _spec(protocol="SSL", caSecretRef=CA, clientCertSecretRef=CLIENT_CERT)
    pods = _pods(_steady(spec))
    assert len(pods) == 3
    for pod in pods:
        env = _env(pod)
        assert env["OCR_KAFKA_SSL_CERT_FILE"] == "/etc/ocr/kafka-client/tls.crt"
        assert env["OCR_KAFKA_SSL_KEY_FILE"] == "/etc/ocr/kafka-client/tls.key"
        volume = next(v for v in pod["volumes"] if v["name"] == "kafka-client-cert")
        assert volume["secret"] == {
            "secretName": "stack-a-tls",
            "items": [
                {"key": "tls.crt", "path": "tls.crt"},
                {"key": "tls.key", "path": "tls.key", "mode": 0o440},
            ],
        }
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["kafka-client-cert"] == {
            "name": "kafka-client-cert",
            "mountPath": "/etc/ocr/kafka-client",
            "readOnly": True,
        }
        # the group of the key's file is the pod's fsGroup, which the runtime user is in
        context = pod["securityContext"]
        assert context["fsGroup"] == context["runAsUser"]


def test_strimzi_over_tls_trusts_the_cluster_ca_unless_the_spec_names_one() -> None:
    for protocol in ("SSL", "SASL_SSL"):
        pod = _pods(_steady(_spec("Strimzi", protocol=protocol)))[0]
        volume = next(v for v in pod["volumes"] if v["name"] == "kafka-ca")
        assert volume["secret"]["secretName"] == "events-cluster-ca-cert", protocol
        assert _env(pod)["OCR_KAFKA_SSL_CA_FILE"] == "/etc/ocr/kafka-ca/ca.crt"
    named = _pods(_steady(_spec("Strimzi", protocol="SSL", caSecretRef={"name": "mine"})))[0]
    assert [v["secret"]["secretName"] for v in named["volumes"] if v["name"] == "kafka-ca"] == [
        "mine"
    ]
    # no TLS, or not Strimzi: nothing to trust beyond the image's CAs
    for spec in (_spec("Strimzi", protocol="SASL_PLAINTEXT"), _spec(protocol="SSL")):
        pod = _pods(_steady(spec))[0]
        assert "OCR_KAFKA_SSL_CA_FILE" not in _env(pod)
        assert all(v["name"] != "kafka-ca" for v in pod["volumes"])


def test_keda_presents_the_stack_client_certificate() -> None:
    manifests = _steady(_keda_spec("Strimzi", protocol="SSL", clientCertSecretRef=CLIENT_CERT))
    [auth] = _by_kind(manifests, Kind.TRIGGER_AUTHENTICATION)
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "ca", "name": "events-cluster-ca-cert", "key": "ca.crt"},
        {"parameter": "cert", "name": "stack-a-tls", "key": "tls.crt"},
        {"parameter": "key", "name": "stack-a-tls", "key": "tls.key"},
    ]
