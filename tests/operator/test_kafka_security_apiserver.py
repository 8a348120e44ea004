"""On the local apiserver: the CEL rules of spec.kafka.security, the rendered Deployments
with their Secret-backed Kafka env and CA volume (server-side dry run), and the rendered
Strimzi KafkaUser through the operator's own apply path.

Strimzi cannot be installed on the local cluster (no image registry): the KafkaUser goes to
a stand-in CRD (tests/operator/testdata), which proves the apply path, owner reference,
labels and shape, not Strimzi's user operator."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocr_operator.apply import KubeClient
from ocr_operator.children import apply_all as apply_children
from ocr_operator.model import OCRServingSpec
from ocr_operator.ports import Owner
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_operator.settings import OperatorSettings
from tests.operator._cluster import get, install_crds, kubectl, standin_crd
from tests.operator._examples import ROOT, example_resource

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

STANDIN = Path(__file__).parent / "testdata" / "strimzi-kafkauser-standin.yaml"
CREDENTIALS = {
    "usernameSecretRef": {"name": "kafka-credentials", "key": "user"},
    "passwordSecretRef": {"name": "kafka-credentials", "key": "password"},
}
CA = {"caSecretRef": {"name": "events-cluster-ca-cert"}}
CLIENT_CERT = {"clientCertSecretRef": {"name": "stack-tls"}}


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-kafkasec-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kafka_user_crd(kubeconfig: Path) -> Iterator[None]:
    with standin_crd(STANDIN, "kafkausers.kafka.strimzi.io"):
        yield


def _resource(name: str, security: dict[str, Any], management: str = "Operator") -> dict[str, Any]:
    resource = copy.deepcopy(example_resource("standard"))
    resource["metadata"] = {"name": name}
    resource["spec"]["kafka"].update(security=security, management=management)
    if management == "Strimzi":
        resource["spec"]["kafka"]["strimziCluster"] = "events"
    return resource


def _dry_run(namespace: str, document: dict[str, Any]) -> str:
    return kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-",
        stdin=yaml.safe_dump(document), check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("security", "management", "message"),
    [
        ({"protocol": "SASL_SSL"}, "Operator", "needs usernameSecretRef and passwordSecretRef"),
        (
            {"protocol": "SASL_SSL", "saslMechanism": "PLAIN"},
            "Strimzi",
            "unless kafka.management is Strimzi with saslMechanism SCRAM-SHA-512",
        ),
        (
            {"protocol": "SASL_SSL", "usernameSecretRef": CREDENTIALS["usernameSecretRef"]},
            "Operator",
            "usernameSecretRef and passwordSecretRef go together",
        ),
        ({"protocol": "SASL_PLAINTEXT", **CREDENTIALS, **CA}, "Operator", "caSecretRef needs"),
        ({"protocol": "SSL", **CREDENTIALS}, "Operator", "usernameSecretRef needs protocol"),
        (
            {"protocol": "SASL_PLAINTEXT", **CREDENTIALS, **CLIENT_CERT},
            "Operator",
            "clientCertSecretRef needs protocol SSL or SASL_SSL",
        ),
    ],
)
def test_the_apiserver_refuses_incomplete_security(
    namespace: str, security: dict[str, Any], management: str, message: str
) -> None:
    out = _dry_run(namespace, _resource("refused", security, management))
    assert message in out, out


@pytest.mark.parametrize(
    ("security", "management"),
    [
        ({"protocol": "SASL_SSL", **CREDENTIALS, **CA}, "Operator"),
        ({"protocol": "SASL_SSL", **CA}, "Strimzi"),
        ({"protocol": "SSL", **CA}, "Operator"),
        ({"protocol": "SSL", **CLIENT_CERT}, "Strimzi"),
    ],
)
def test_the_apiserver_accepts_complete_security(
    namespace: str, security: dict[str, Any], management: str
) -> None:
    out = _dry_run(namespace, _resource("accepted", security, management))
    assert "created (server dry run)" in out, out


def test_rendered_deployments_with_kafka_secrets_pass_the_apiserver(namespace: str) -> None:
    resource = _resource("secured", {"protocol": "SASL_SSL", **CREDENTIALS, **CA, **CLIENT_CERT})
    spec = OCRServingSpec.model_validate(resource["spec"])
    manifests = render(
        spec, Instance("secured", namespace), plan_transition(spec.architecture.mode, Observed())
    )
    deployments = [m for m in manifests if m.kind is Kind.DEPLOYMENT]
    assert len(deployments) == 2
    for deployment in deployments:
        out = _dry_run(namespace, deployment.body)
        assert "created (server dry run)" in out, out
        volumes = {v["name"] for v in deployment.body["spec"]["template"]["spec"]["volumes"]}
        assert {"kafka-ca", "kafka-client-cert"} <= volumes


def test_the_rendered_kafka_user_is_applied_owned_by_the_stack(
    namespace: str, kafka_user_crd: None
) -> None:
    resource = _resource("strimzi", {"protocol": "SASL_SSL", **CA}, "Strimzi")
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(resource))
    owner_body = get("ocrs", "strimzi", namespace)
    assert owner_body is not None
    owner = Owner("strimzi", namespace, owner_body["metadata"]["uid"])
    spec = OCRServingSpec.model_validate(owner_body["spec"])
    manifests = render(
        spec, Instance("strimzi", namespace), plan_transition(spec.architecture.mode, Observed())
    )
    user = next(m for m in manifests if m.kind is Kind.KAFKA_USER)

    async def apply_twice() -> None:
        kube = KubeClient.from_environment()
        try:
            backoff = OperatorSettings().error_backoff_seconds
            await apply_children(kube, owner, [user], backoff=backoff)
            # idempotent, as on every resync
            await apply_children(kube, owner, [user], backoff=backoff)
        finally:
            kube.close()

    asyncio.run(apply_twice())
    stored = get("kafkausers", "strimzi-kafka", namespace)
    assert stored is not None
    assert stored["spec"] == user.body["spec"]  # nothing pruned by the schema
    assert stored["metadata"]["labels"]["strimzi.io/cluster"] == "events"
    assert stored["metadata"]["ownerReferences"][0]["uid"] == owner.uid


def test_pod_env_may_not_set_what_kafka_security_renders(namespace: str) -> None:
    resource = _resource("env", {"protocol": "SASL_SSL", **CREDENTIALS})
    resource["spec"]["worker"]["env"] = [{"name": "OCR_KAFKA_SASL_PASSWORD", "value": "x"}]
    out = _dry_run(namespace, resource)
    assert "OCR_KAFKA_SASL_PASSWORD" in out and "the operator renders them" in out, out
