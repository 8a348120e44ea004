"""`spec.kafka.security` in the pods (Secret-backed env; the CA and the client certificate as
read-only volumes) and,
under Strimzi with SCRAM-SHA-512 and no credentials of its own, the stack's `KafkaUser`
with ACLs on its own topics and consumer groups only."""

from __future__ import annotations

from typing import Any

from ocr_contract import Env, SaslMechanism
from ocr_operator.model import Component, OCRServingSpec, TopicManagement
from ocr_operator.model.kafka_security import (
    KafkaCaSecretRef,
    KafkaClientCertSecretRef,
    KafkaSecuritySpec,
)
from ocr_operator.model.scaling import AutoscalingProvider
from ocr_operator.render._manifest import Instance, Kind, Manifest, component_name, make
from ocr_operator.render.env import _secret_env

CA_VOLUME = "kafka-ca"
CA_DIR = "/etc/ocr/kafka-ca"
CA_FILE = "ca.crt"
CLIENT_CERT_VOLUME = "kafka-client-cert"
CLIENT_CERT_DIR = "/etc/ocr/kafka-client"
CLIENT_CERT_FILE = "tls.crt"
CLIENT_KEY_FILE = "tls.key"
# The key of the Secret Strimzi's user operator writes for a SCRAM-SHA-512 KafkaUser.
STRIMZI_PASSWORD_KEY = "password"
TOPIC_OPERATIONS = ["Describe", "Read", "Write"]
GROUP_OPERATIONS = ["Describe", "Read"]


def kafka_user_name(instance: Instance) -> str:
    """The KafkaUser, its Secret (Strimzi names it after the user) and the SASL user name."""
    return f"{instance.name}-kafka"


def kafka_security_config(spec: OCRServingSpec) -> dict[str, str]:
    """The non-secret settings: protocol, mechanism, CA path. They go in the containers'
    env, not the ConfigMap: the migration Job shares the ConfigMap, never talks to Kafka,
    and its Settings would refuse a SASL protocol without the credentials."""
    security = spec.kafka.security
    if security is None:
        return {}
    data = {
        Env.KAFKA_SECURITY_PROTOCOL.value: security.protocol.value,
        Env.KAFKA_SASL_MECHANISM.value: security.sasl_mechanism.value,
    }
    if _ca_ref(spec) is not None:
        data[Env.KAFKA_SSL_CA_FILE.value] = f"{CA_DIR}/{CA_FILE}"
    if security.client_cert_secret_ref is not None:
        data[Env.KAFKA_SSL_CERT_FILE.value] = f"{CLIENT_CERT_DIR}/{CLIENT_CERT_FILE}"
        data[Env.KAFKA_SSL_KEY_FILE.value] = f"{CLIENT_CERT_DIR}/{CLIENT_KEY_FILE}"
    return data


def kafka_security_env(spec: OCRServingSpec, instance: Instance) -> list[dict[str, Any]]:
    """Env of every Kafka client container; credentials only as secretKeyRef."""
    security = spec.kafka.security
    if security is None:
        return []
    env: list[dict[str, Any]] = [
        {"name": name, "value": value} for name, value in kafka_security_config(spec).items()
    ]
    if security.strimzi_user:
        user = kafka_user_name(instance)
        # The user name is the KafkaUser's own name, public like any object name.
        env.append({"name": Env.KAFKA_SASL_USERNAME.value, "value": user})
        env.append(_secret_env(Env.KAFKA_SASL_PASSWORD.value, user, STRIMZI_PASSWORD_KEY))
    elif security.username_secret_ref is not None and security.password_secret_ref is not None:
        username, password = security.username_secret_ref, security.password_secret_ref
        env.append(_secret_env(Env.KAFKA_SASL_USERNAME.value, username.name, username.key))
        env.append(_secret_env(Env.KAFKA_SASL_PASSWORD.value, password.name, password.key))
    return env


def kafka_tls_volumes(spec: OCRServingSpec) -> list[dict[str, Any]]:
    """The CA bundle and the client certificate, each a Secret volume of the keys it needs."""
    volumes: list[dict[str, Any]] = []
    ca = _ca_ref(spec)
    if ca is not None:
        ca_items = [{"key": ca.key, "path": CA_FILE}]
        volumes.append({"name": CA_VOLUME, "secret": {"secretName": ca.name, "items": ca_items}})
    client = _client_cert_ref(spec)
    if client is not None:
        items: list[dict[str, Any]] = [
            {"key": client.cert_key, "path": CLIENT_CERT_FILE},
            # Files of Secret volumes belong to root and the pod's fsGroup, which the runtime
            # user is in: group-readable is enough, and no one else needs the key.
            {"key": client.key_key, "path": CLIENT_KEY_FILE, "mode": 0o440},
        ]
        secret = {"secretName": client.name, "items": items}
        volumes.append({"name": CLIENT_CERT_VOLUME, "secret": secret})
    return volumes


def kafka_tls_mounts(spec: OCRServingSpec) -> list[dict[str, Any]]:
    mounts = []
    if _ca_ref(spec) is not None:
        mounts.append({"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True})
    if _client_cert_ref(spec) is not None:
        mounts.append({"name": CLIENT_CERT_VOLUME, "mountPath": CLIENT_CERT_DIR, "readOnly": True})
    return mounts


def kafka_user(spec: OCRServingSpec, instance: Instance) -> Manifest | None:
    """The stack's Strimzi KafkaUser: SCRAM-SHA-512, simple authorization, this stack's
    topics (all three: a mode change must not wait for an ACL) and groups, nothing else."""
    security = spec.kafka.security
    if not _renders_user(spec, security):
        return None
    kafka = spec.kafka
    topics = [kafka.topics.jobs, kafka.topics.results, kafka.topics.dead_letter]
    acls = [_acl("topic", name, TOPIC_OPERATIONS) for name in topics] + [
        _acl("group", name, GROUP_OPERATIONS) for name in (kafka.consumer_group, kafka.writer_group)
    ]
    body = {
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"type": "simple", "acls": acls},
    }
    manifest = make(Kind.KAFKA_USER, kafka_user_name(instance), instance, body)
    manifest.body["metadata"]["labels"]["strimzi.io/cluster"] = kafka.strimzi_cluster
    return manifest


def _renders_user(spec: OCRServingSpec, security: KafkaSecuritySpec | None) -> bool:
    return (
        security is not None
        and security.strimzi_user
        and spec.kafka.management is TopicManagement.STRIMZI
    )


def _acl(kind: str, name: str, operations: list[str]) -> dict[str, Any]:
    return {
        "resource": {"type": kind, "name": name, "patternType": "literal"},
        "operations": list(operations),
        "host": "*",
    }


def _ca_ref(spec: OCRServingSpec) -> KafkaCaSecretRef | None:
    """The spec's CA; unset under Strimzi over TLS, the cluster CA Strimzi publishes (the
    system CAs never trust it)."""
    security = spec.kafka.security
    if security is None or security.ca_secret_ref is not None:
        return None if security is None else security.ca_secret_ref
    cluster = spec.kafka.strimzi_cluster
    if security.protocol.uses_tls and spec.kafka.management is TopicManagement.STRIMZI and cluster:
        return KafkaCaSecretRef(name=f"{cluster}-cluster-ca-cert", key=CA_FILE)
    return None


def _client_cert_ref(spec: OCRServingSpec) -> KafkaClientCertSecretRef | None:
    security = spec.kafka.security
    return None if security is None else security.client_cert_secret_ref


# KEDA's Kafka scaler names the SASL mechanisms its own way.
_KEDA_SASL = {
    SaslMechanism.SCRAM_SHA_512: "scram_sha512",
    SaslMechanism.SCRAM_SHA_256: "scram_sha256",
    SaslMechanism.PLAIN: "plaintext",
}


def keda_kafka_metadata(spec: OCRServingSpec) -> dict[str, str]:
    """The Kafka scaler's `sasl` and `tls` modes: it reads the lag as the pods do."""
    security = spec.kafka.security
    if security is None:
        return {}
    modes = {"sasl": _KEDA_SASL[security.sasl_mechanism]} if security.protocol.uses_sasl else {}
    if security.protocol.uses_tls:
        modes["tls"] = "enable"
    return modes


def trigger_authentication_name(instance: Instance) -> str:
    return f"{component_name(instance, Component.WORKER)}-kafka"


def trigger_authentication(spec: OCRServingSpec, instance: Instance) -> Manifest | None:
    """KEDA's credentials for the worker's Kafka scaler, from the Secrets the pods use; only
    with spec.kafka.security and a KEDA-scaled worker."""
    security = spec.kafka.security
    scaling = spec.worker.autoscaling
    if security is None or not scaling.enabled or scaling.provider is not AutoscalingProvider.KEDA:
        return None
    secrets: list[dict[str, str]] = []
    body: dict[str, Any] = {}
    if security.strimzi_user:
        user = kafka_user_name(instance)
        secrets.append({"parameter": "password", "name": user, "key": STRIMZI_PASSWORD_KEY})
        # Strimzi's user Secret holds no user name; the worker container carries it as a
        # plain value, which KEDA reads from the scale target.
        body["env"] = [
            {
                "parameter": "username",
                "name": Env.KAFKA_SASL_USERNAME.value,
                "containerName": Component.WORKER.value,
            }
        ]
    elif security.username_secret_ref is not None and security.password_secret_ref is not None:
        for parameter, ref in (
            ("username", security.username_secret_ref),
            ("password", security.password_secret_ref),
        ):
            secrets.append({"parameter": parameter, "name": ref.name, "key": ref.key})
    ca = _ca_ref(spec)
    if ca is not None:
        secrets.append({"parameter": "ca", "name": ca.name, "key": ca.key})
    client = _client_cert_ref(spec)
    if client is not None:
        secrets.append({"parameter": "cert", "name": client.name, "key": client.cert_key})
        secrets.append({"parameter": "key", "name": client.name, "key": client.key_key})
    if not secrets and not body:
        return None  # TLS with the system CAs: the scaler needs no credentials
    body["secretTargetRef"] = secrets
    name = trigger_authentication_name(instance)
    return make(Kind.TRIGGER_AUTHENTICATION, name, instance, body, Component.WORKER)
