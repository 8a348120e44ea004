"""A stack on the real node over the broker's SASL_SSL listener: an OCRServing whose
spec.kafka points at kafka.kafka.svc:9093 (SCRAM-SHA-512, the CA and the credentials from
Secrets) becomes Ready under the operator, reads a document submitted through its API, and
its pods' connections to the kafka Service, as the host's conntrack table records them, all
go to 9093, none to the PLAINTEXT 9092. With a wrong password the worker never becomes
Ready and the stack is Degraded (AccessDenied) with the broker's refusal.

The operator runs in-process (KopfRunner) on the host, where it reaches the same broker as
127.0.0.1:19095 with the same test user; the pods reach 127.0.0.1:19096 through node.sh's
forwarder on the node's gateway. Needs `make infra-up cluster-up` and `make images`."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from ocr_operator.handlers import register
from ocr_operator.settings import OperatorSettings
from tests.conftest import LOCAL_DIR, SecureKafka
from tests.golden._local import (
    RUNTIME_IMAGE,
    api_key,
    bearer,
    documents,
    png,
    port_forward,
    post_image,
    require_images,
    rows,
)
from tests.node._kube import NODE_NAME, NODE_SCRIPT, NODE_SELECTOR, TAINT_KEY
from tests.operator._cluster import apply_documents, condition, get, install_crds, kubectl, wait_for
from tests.operator._examples import ROOT, example_resource

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

POD_BOOTSTRAP = "kafka.kafka.svc:9093"
SECURE_PORT = 9093  # the PLAINTEXT one is 9092
POD_LISTENER_PORT = 19096  # the broker's side of kafka.kafka.svc:9093
BROKER_LOG = LOCAL_DIR / "logs" / "kafka.log"
# Migration, then the model loads in the worker on a shared 2-core machine.
READY_TIMEOUT = 900
PLACEMENT = {
    "nodeSelector": NODE_SELECTOR,
    "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
}


def _node_forwards_the_secure_port() -> str | None:
    """None when the node forwards kafka.kafka.svc:9093 to the broker, the reason otherwise."""
    status = subprocess.run([str(NODE_SCRIPT), "status"], capture_output=True, text=True,
                            timeout=60, check=False).stdout  # fmt: skip
    if "forward-kafka-secure: running" not in status:
        return f"node.sh status: {status.strip()}"
    ports = kubectl("get", "svc", "kafka", "-n", "kafka", "-o", "jsonpath={.spec.ports[*].port}")
    return None if str(SECURE_PORT) in ports.split() else f"Service kafka/kafka has ports {ports}"


@pytest.fixture(scope="module")
def pod_kafka(kafka_secure_for_pods: str, real_node: str) -> str:
    """kafka.kafka.svc:9093 once the node forwards it (`node.sh up` adds a missing forwarder
    and Service port to a node started before they existed)."""
    if _node_forwards_the_secure_port() is not None:
        subprocess.run([str(NODE_SCRIPT), "up"], capture_output=True, timeout=1800, check=False)
    problem = _node_forwards_the_secure_port()
    assert problem is None, f"the node does not forward {kafka_secure_for_pods}: {problem}"
    require_images(RUNTIME_IMAGE)
    return kafka_secure_for_pods


def _operator_settings(kafka: SecureKafka) -> OperatorSettings:
    return OperatorSettings(
        kafka_bootstrap=kafka.bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username=kafka.username,
        kafka_sasl_password=kafka.password,
        kafka_ssl_ca_file=kafka.ca_file,
        runtime_repository=RUNTIME_IMAGE.rsplit(":", 1)[0],
        runtime_tag="dev",
        default_node_selector=PLACEMENT["nodeSelector"],
        default_tolerations=PLACEMENT["tolerations"],
        resync_seconds=5,
        wait_seconds=2,
        error_backoff_seconds=3,
    )


@pytest.fixture(scope="module")
def namespace(pod_kafka: str) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"node-kafkasec-{uuid.uuid4().hex[:6]}"
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
        kubectl("delete", "ocrs", "--all", "-n", namespace, "--wait=true", "--timeout=180s")
    assert runner.exception is None


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def _stack(namespace: str, name: str, credentials: str, bootstrap: str) -> dict[str, Any]:
    """The standard example on the real node, one API and one worker, over SASL_SSL."""
    resource = copy.deepcopy(example_resource("standard"))
    resource["metadata"] = {"name": name}
    spec = resource["spec"]
    spec.pop("redis")
    spec["api"].update(replicas=1, limits={})
    spec["api"]["resources"]["requests"] = {"cpu": "100m", "memory": "256Mi"}
    spec["worker"].update(replicas=1)
    spec["worker"]["resources"]["requests"] = {"cpu": "200m", "memory": "512Mi"}
    spec["networkPolicy"] = {"enabled": False}
    prefix = f"{namespace}-{name}"
    spec["kafka"].update(
        bootstrapServers=bootstrap,
        partitions=1,
        topics={"jobs": f"{prefix}-jobs", "results": f"{prefix}-results",
                "deadLetter": f"{prefix}-dlq"},
        security={
            "protocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
            "usernameSecretRef": {"name": credentials, "key": "user"},
            "passwordSecretRef": {"name": credentials, "key": "password"},
            "caSecretRef": {"name": "kafka-ca"},
        },
    )  # fmt: skip
    return resource


def _apply_stack(
    namespace: str, kafka: SecureKafka, bootstrap: str, name: str, password: str
) -> None:
    credentials = f"{name}-kafka-credentials"
    apply_documents(namespace, [
        _secret("ocr-database", {"url": "mysql+aiomysql://ocr:ocr@mariadb.ocr.svc:3306/ocr"}),
        _secret("kafka-ca", {"ca.crt": kafka.ca_file.read_text(encoding="utf-8")}),
        _secret(credentials, {"user": kafka.username, "password": password}),
        _stack(namespace, name, credentials, bootstrap),
    ])  # fmt: skip


def _ready(namespace: str, name: str) -> dict[str, Any] | None:
    resource = get("ocrs", name, namespace)
    if resource is None or condition(resource, "Ready").get("status") != "True":
        return None
    if resource["status"].get("observedGeneration") != resource["metadata"]["generation"]:
        return None
    return resource


def _stack_pods(namespace: str, name: str) -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}",
                  "-o", "json")  # fmt: skip
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def _kafka_ports_used(pod_ip: str, service_ip: str) -> set[int]:
    """The kafka Service ports of the connections the host's conntrack table holds from a pod
    (long-lived client connections stay ESTABLISHED; closed ones linger in TIME_WAIT)."""
    done = subprocess.run(
        ["conntrack", "-L", "-p", "tcp", "-s", pod_ip, "-d", service_ip],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"conntrack -L: {done.stderr.strip()}"
    # A line holds the original direction, then the reply: its first dport is the Service's.
    found = (re.search(r"\bdport=(\d+)", line) for line in done.stdout.splitlines())
    return {int(match.group(1)) for match in found if match}


def _ocr_through_the_api(namespace: str, name: str) -> None:
    key = api_key(namespace, name)
    document = documents()[0]
    with port_forward(namespace, f"svc/{name}-api") as base:
        status, view = post_image(base, "/v1/ocr?timeout=120", png(document),
                                  timeout=150, headers=bearer(key))  # fmt: skip
    assert status == 200, view
    assert view["status"] == "succeeded", view
    assert rows(view) == list(document.lines), view


def _assert_rendered_for_sasl_ssl(namespace: str, name: str) -> None:
    """The pods are told kafka.kafka.svc:9093 and SASL_SSL, the password only by reference."""
    config = get("configmap", f"{name}-config", namespace)
    assert config is not None
    assert config["data"]["OCR_KAFKA_BOOTSTRAP"] == POD_BOOTSTRAP
    for component in ("api", "worker"):
        deployment = get("deployment", f"{name}-{component}", namespace)
        assert deployment is not None
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["OCR_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert "value" not in env["OCR_KAFKA_SASL_PASSWORD"]


def _assert_pods_used_the_secure_port_only(namespace: str, name: str) -> None:
    service_ip = kubectl("get", "svc", "kafka", "-n", "kafka", "-o", "jsonpath={.spec.clusterIP}")
    pods = [p for p in _stack_pods(namespace, name) if p["status"]["phase"] == "Running"]
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods}
    assert components == {"api", "worker"}, components
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE_NAME
        used = _kafka_ports_used(pod["status"]["podIP"], service_ip.strip())
        # 9093 and nothing else: each pod talked to Kafka, and never through PLAINTEXT 9092.
        assert used == {SECURE_PORT}, (pod["metadata"]["name"], used)


@pytest.mark.timeout(READY_TIMEOUT + 600)
def test_a_stack_on_the_node_reads_a_document_over_sasl_ssl(
    operator: KopfRunner, namespace: str, kafka_secure: SecureKafka, pod_kafka: str
) -> None:
    name = "secured"
    _apply_stack(namespace, kafka_secure, pod_kafka, name, kafka_secure.password)
    wait_for(lambda: _ready(namespace, name), f"{name} Ready", timeout=READY_TIMEOUT)
    _assert_rendered_for_sasl_ssl(namespace, name)
    _ocr_through_the_api(namespace, name)
    _assert_pods_used_the_secure_port_only(namespace, name)


def _refused_login(namespace: str, name: str) -> str | None:
    """The termination message of a worker container the broker refused, once there is one."""
    for pod in _stack_pods(namespace, name):
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") != "worker":
            continue
        for status in pod["status"].get("containerStatuses") or []:
            last = (status.get("lastState") or {}).get("terminated") or {}
            if "refused the SCRAM-SHA-512 login" in (last.get("message") or ""):
                return str(last["message"])
    return None


def _broker_log_size() -> int:
    return BROKER_LOG.stat().st_size if BROKER_LOG.is_file() else 0


def _broker_log_since(offset: int) -> str:
    """What the broker logged after offset (all of it when a restart truncated the file)."""
    with BROKER_LOG.open("rb") as log:
        log.seek(offset if offset <= BROKER_LOG.stat().st_size else 0)
        return log.read().decode(errors="replace")


def _degraded(namespace: str, name: str) -> dict[str, Any] | None:
    resource = get("ocrs", name, namespace)
    return resource if condition(resource, "Degraded").get("status") == "True" else None


@pytest.mark.timeout(READY_TIMEOUT + 300)
def test_a_wrong_password_keeps_the_worker_unready_with_the_broker_refusal(
    operator: KopfRunner, namespace: str, kafka_secure: SecureKafka, pod_kafka: str
) -> None:
    name = "refused"
    broker_log_offset = _broker_log_size()
    _apply_stack(namespace, kafka_secure, pod_kafka, name, "not-the-password")
    message = wait_for(lambda: _refused_login(namespace, name), "the worker's refused login",
                       timeout=READY_TIMEOUT)  # fmt: skip
    assert f"Kafka at {pod_kafka} refused the SCRAM-SHA-512 login of user " in message, message
    assert "not-the-password" not in message
    resource = wait_for(lambda: _degraded(namespace, name), f"{name} Degraded", timeout=300)
    degraded = condition(resource, "Degraded")
    # The broker's refusal is what the condition names, not the kubelet's back-off.
    assert degraded["reason"] == "AccessDenied", degraded
    assert f"pod {name}-" in degraded["message"], degraded
    assert f"access denied: Kafka at {pod_kafka} refused the SCRAM-SHA-512" in degraded["message"]
    assert condition(resource, "Ready")["status"] == "False", resource["status"]
    worker = get("deployment", f"{name}-worker", namespace)
    assert worker is not None
    assert not worker["status"].get("availableReplicas"), worker["status"]
    # The broker refused them on the pods' listener, whose local address names its port.
    channel = f"channelId=127.0.0.1:{POD_LISTENER_PORT}-"
    logged = _broker_log_since(broker_log_offset).splitlines()
    refusals = [line for line in logged if "Failed authentication" in line and channel in line]
    assert refusals, f"no failed SCRAM-SHA-512 login on {POD_LISTENER_PORT} in {BROKER_LOG}"
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in refusals[-1], refusals[-1]
