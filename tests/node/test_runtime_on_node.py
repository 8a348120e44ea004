"""The runtime image on the real node: the all-in-one server as a Deployment behind a
ClusterIP Service, called by another pod through cluster DNS with a rendered document; its
logs are JSON; `kubectl logs/exec/port-forward` reach it. And the broker's second listener:
a pod produces through kafka.kafka.svc:9092, the host reads the record on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import urllib.request
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from PIL import Image

from tests.node._kube import NODE_SCRIPT, Json, Kube, container, deployment, on_real_node, pod
from tests.node._kube import service as cluster_service
from tests.support.documents import normalise, render_document

pytestmark = pytest.mark.e2e

RUNTIME_IMAGE = "localhost/ocr-runtime:dev-onnx"
LINES = ("invoice total 4711", "payment due 2026")
MODEL_START_S = 300.0  # the image loads its models before /readyz answers 200

# Posts /page/page.png to the Service by its DNS name; prints the response body on one line.
_CLIENT = r"""
import json, sys, urllib.request, uuid
boundary = uuid.uuid4().hex
head = ('--%s\r\nContent-Disposition: form-data; name="image"; filename="page.png"\r\n'
        'Content-Type: image/png\r\n\r\n' % boundary).encode()
body = head + open("/page/page.png", "rb").read() + ("\r\n--%s--\r\n" % boundary).encode()
request = urllib.request.Request(sys.argv[1], data=body,
    headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
print(json.dumps(json.load(urllib.request.urlopen(request, timeout=240))))
"""

_PRODUCER = r"""
import asyncio, sys
from aiokafka import AIOKafkaProducer
async def main():
    producer = AIOKafkaProducer(bootstrap_servers="kafka.kafka.svc:9092", acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(sys.argv[1], sys.argv[2].encode())
    finally:
        await producer.stop()
    print("sent")
asyncio.run(main())
"""


def _node_images() -> set[str]:
    done = subprocess.run(
        [str(NODE_SCRIPT), "images"], capture_output=True, text=True, timeout=60, check=False
    )
    return set(done.stdout.split())


@pytest.fixture(scope="module")
def runtime_image(real_node: str) -> str:
    """The runtime image, loaded into the node (from podman's storage if needed)."""
    if RUNTIME_IMAGE not in _node_images():
        subprocess.run([str(NODE_SCRIPT), "load-images"], timeout=900, check=False)
    if RUNTIME_IMAGE not in _node_images():
        pytest.fail(
            f"{RUNTIME_IMAGE} is not in the real node's containerd nor in podman's storage: "
            "build it with `make images` (which loads it into the node)"
        )
    return RUNTIME_IMAGE


def _png(lines: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(render_document(lines, size=40).image).save(buffer, format="PNG")
    return buffer.getvalue()


def _ocr_server(kube: Kube, image: str) -> None:
    env = [{"name": "OCR_HTTP_HOST", "value": "0.0.0.0"},
           {"name": "OCR_DATABASE_URL", "value": "sqlite+aiosqlite:////data/ocr.db"}]  # fmt: skip
    probe = {"httpGet": {"path": "/readyz", "port": 8000}, "periodSeconds": 2,
             "failureThreshold": 150}  # fmt: skip
    resources = {"requests": {"cpu": "250m", "memory": "512Mi"}}
    server = container("ocr", image, args=["all-in-one"], env=env, readinessProbe=probe,
                       resources=resources,
                       ports=[{"containerPort": 8000}],
                       volumeMounts=[{"name": "data", "mountPath": "/data"}])  # fmt: skip
    spec = on_real_node({"containers": [server], "volumes": [{"name": "data", "emptyDir": {}}]})
    kube.apply(deployment("ocr", spec), cluster_service("ocr", 80, 8000))
    kube.wait_ready("deployment/ocr", timeout=MODEL_START_S)


def _ocr_through_dns(kube: Kube, image: str) -> Json:
    page = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "page"},
            "binaryData": {"page.png": base64.b64encode(_png(LINES)).decode()}}  # fmt: skip
    client = pod("client", container(
        "client", image, ["python", "-c", _CLIENT, f"http://ocr.{kube.namespace}.svc/v1/ocr?timeout=200"],
        volumeMounts=[{"name": "page", "mountPath": "/page"}]))  # fmt: skip
    client["spec"]["volumes"] = [{"name": "page", "configMap": {"name": "page"}}]
    kube.apply(page, client)
    phase = kube.wait_pod_done("client", timeout=MODEL_START_S)
    logs = kube.logs("pod/client")
    assert phase == "Succeeded", logs
    body: Json = json.loads(logs.strip().splitlines()[-1])
    return body


def test_all_in_one_on_the_node_reads_a_document_for_a_pod(kube: Kube, runtime_image: str) -> None:
    _ocr_server(kube, runtime_image)
    job = _ocr_through_dns(kube, runtime_image)
    assert job["status"] == "succeeded", job
    read = normalise(" ".join(line["text"] for line in job["result"]["lines"]))
    for line in LINES:
        assert line in read, f"{line!r} not in what the server read: {read!r}"
    server_logs = [line for line in kube.logs("deploy/ocr").splitlines() if line.strip()]
    assert server_logs, "the server logged nothing"
    for line in server_logs:
        assert isinstance(json.loads(line), dict), f"not a JSON log line: {line!r}"
    pod_name = kube.ok("get", "pods", "-l", "app=ocr", "-o", "jsonpath={.items[0].metadata.name}")
    assert kube.ok("exec", "deploy/ocr", "--", "cat", "/etc/hostname").strip() == pod_name
    with kube.port_forward("deploy/ocr", 8000) as port:
        url = f"http://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200


async def _read_from_host(bootstrap: str, topic: str, wanted: bytes) -> bool:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=20_000)
        return any(r.value == wanted for records in batches.values() for r in records)
    finally:
        await consumer.stop()


def test_a_pod_produces_through_the_kafka_service_and_the_host_reads_it(
    kube: Kube, runtime_image: str, kafka_bootstrap: str
) -> None:
    topic, value = f"node-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    producer = pod("producer", container("producer", runtime_image,
                                         ["python", "-c", _PRODUCER, topic, value]))  # fmt: skip
    kube.apply(producer)
    phase = kube.wait_pod_done("producer")
    logs = kube.logs("pod/producer")
    assert (phase, logs.strip().splitlines()[-1:]) == ("Succeeded", ["sent"]), (
        f"{logs}\n(a broker started before its pod listener existed advertises only "
        "127.0.0.1: restart it with scripts/infra/infra.sh down && scripts/infra/infra.sh up)"
    )
    assert asyncio.run(_read_from_host(kafka_bootstrap, topic, value.encode()))
