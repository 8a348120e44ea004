"""End to end on the local control plane (kwok pods) and the broker's SASL_SSL listener: an
operator whose own admin client logs in with SCRAM-SHA-512 creates a secured stack's topics,
and the stack's Deployments reference its Kafka Secrets and CA."""

from __future__ import annotations

import asyncio
import copy
import functools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from ocr_operator.handlers import register
from ocr_operator.kafka_topics import partition_counts
from ocr_operator.settings import OperatorSettings
from tests.conftest import SecureKafka
from tests.operator._cluster import apply_documents, condition, get, install_crds, kubectl, wait_for
from tests.operator._examples import ROOT, example_documents

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

NAME = "secured"


def _operator_settings(kafka: SecureKafka) -> OperatorSettings:
    return OperatorSettings(
        kafka_bootstrap=kafka.bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username=kafka.username,
        kafka_sasl_password=kafka.password,
        kafka_ssl_ca_file=kafka.ca_file,
        resync_seconds=3,
        wait_seconds=1,
        error_backoff_seconds=2,
    )


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-kafkasec-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(namespace: str, kafka_secure: SecureKafka) -> Iterator[KopfRunner]:
    registry = kopf.OperatorRegistry()
    register(registry, _operator_settings(kafka_secure))
    args = ["run", "--standalone", "--namespace", namespace]
    with KopfRunner(args, registry=registry, timeout=60) as runner:
        yield runner
        kubectl("delete", "ocrs", "--all", "-n", namespace, "--wait=true", "--timeout=90s")
    assert runner.exception is None


def _documents(namespace: str, kafka: SecureKafka) -> list[dict[str, Any]]:
    documents = copy.deepcopy(example_documents("standard"))
    resource = next(d for d in documents if d["kind"] == "OCRServing")
    resource["metadata"]["name"] = NAME
    prefix = f"{namespace}-{NAME}"
    resource["spec"]["kafka"].update(
        bootstrapServers=kafka.bootstrap,
        topics={"jobs": f"{prefix}-jobs", "results": f"{prefix}-results",
                "deadLetter": f"{prefix}-dlq"},
        security={
            "protocol": "SASL_SSL",
            "usernameSecretRef": {"name": "kafka-credentials", "key": "user"},
            "passwordSecretRef": {"name": "kafka-credentials", "key": "password"},
            "caSecretRef": {"name": "kafka-ca"},
        },
    )  # fmt: skip
    secrets: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
        for name, data in (
            ("kafka-credentials", {"user": kafka.username, "password": kafka.password}),
            ("kafka-ca", {"ca.crt": kafka.ca_file.read_text(encoding="utf-8")}),
        )
    ]
    return secrets + documents


def _topics_ready(namespace: str) -> dict[str, Any] | None:
    resource = get("ocrs", NAME, namespace)
    return resource if condition(resource, "TopicsReady").get("status") == "True" else None


def _deployment(namespace: str) -> dict[str, Any] | None:
    return get("deployments", f"{NAME}-worker", namespace)


def test_a_secured_stack_gets_its_topics_and_secret_backed_pods(
    operator: KopfRunner, namespace: str, kafka_secure: SecureKafka
) -> None:
    apply_documents(namespace, _documents(namespace, kafka_secure))
    resource = wait_for(functools.partial(_topics_ready, namespace), "TopicsReady over SASL_SSL")
    topics = resource["spec"]["kafka"]["topics"]
    options = _operator_settings(kafka_secure).kafka_client_options()
    counts = asyncio.run(
        partition_counts(kafka_secure.bootstrap, [topics["jobs"], topics["deadLetter"]], options)
    )
    partitions = resource["spec"]["kafka"]["partitions"]
    assert counts == {topics["jobs"]: partitions, topics["deadLetter"]: partitions}
    deployment = wait_for(functools.partial(_deployment, namespace), "worker Deployment")
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}
    assert env["OCR_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["OCR_KAFKA_SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "kafka-credentials", "key": "password"}
    }
    assert {"name": "kafka-ca", "mountPath": "/etc/ocr/kafka-ca", "readOnly": True} in pod[
        "containers"
    ][0]["volumeMounts"]
