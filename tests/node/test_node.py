"""The real node beside the kwok GPU nodes: scheduling by taint, pod networking, cluster DNS,
ClusterIP Services, `kubectl logs/exec/port-forward`, and the host's services under the
names the examples use. Pods run the node's busybox test image."""

from __future__ import annotations

import shlex
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.node._kube import (
    NODE_NAME,
    POD_CIDR_PREFIX,
    TAINT_KEY,
    TEST_IMAGE,
    Json,
    Kube,
    container,
    deployment,
    on_real_node,
    pod,
    service,
)

pytestmark = pytest.mark.e2e


def _shell_pod(kube: Kube, name: str, script: str) -> tuple[str, str]:
    """Runs `sh -c script` in a pod on the real node; returns (phase, logs)."""
    kube.apply(pod(name, container("main", TEST_IMAGE, ["sh", "-c", script])))
    phase = kube.wait_pod_done(name)
    return phase, kube.logs(f"pod/{name}")


def _web(kube: Kube, text: str) -> None:
    """busybox httpd answering `text` at /index.html: Deployment and Service `web` (80)."""
    script = (
        f"mkdir -p /www && printf %s {shlex.quote(text)} >/www/index.html"
        " && exec httpd -f -p 8080 -h /www"
    )
    probe = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    web = container("web", TEST_IMAGE, ["sh", "-c", script], readinessProbe=probe,
                    ports=[{"containerPort": 8080}])  # fmt: skip
    spec = on_real_node({"containers": [web], "terminationGracePeriodSeconds": 1})
    kube.apply(deployment("web", spec), service("web", 80, 8080))
    kube.wait_ready("deployment/web")


def test_node_is_tainted_and_only_tolerating_pods_land_on_it(kube: Kube) -> None:
    node = kube.get("node", NODE_NAME)
    taints = {t["key"]: t["effect"] for t in node["spec"].get("taints", [])}
    assert taints.get(TAINT_KEY) == "NoSchedule"
    phase, logs = _shell_pod(kube, "real", "hostname")
    status = kube.pod_status("real")
    assert (phase, logs.strip()) == ("Succeeded", "real")
    assert kube.get("pod", "real")["spec"]["nodeName"] == NODE_NAME
    assert status["podIP"].startswith(POD_CIDR_PREFIX)
    # A workload written for the kwok nodes, which does not tolerate the taint.
    plain: Json = {"containers": [container("main", "example.invalid/ocr:never-pulled")]}
    kube.apply(deployment("plain", plain, replicas=3))
    kube.wait_ready("deployment/plain")
    nodes = {p["spec"]["nodeName"] for p in kube.get("pods", "-l", "app=plain")["items"]}
    assert nodes and NODE_NAME not in nodes


def test_cluster_dns_names_a_cluster_ip_service_that_routes_to_its_pods(kube: Kube) -> None:
    _web(kube, "served on the real node")
    cluster_ip = kube.get("service", "web")["spec"]["clusterIP"]
    fqdn = f"web.{kube.namespace}.svc.cluster.local"
    script = f"nslookup {fqdn}; echo BODY=$(wget -qO- http://web.{kube.namespace}.svc/index.html)"
    phase, logs = _shell_pod(kube, "client", script)
    assert phase == "Succeeded", logs
    assert f"Address: {cluster_ip}" in logs
    assert "BODY=served on the real node" in logs


def test_the_host_reaches_a_service_of_the_node_by_its_cluster_ip(kube: Kube) -> None:
    # As any client in a cluster would (the benchmarks' load generator does): kube-proxy's
    # rules send the host's connection to a pod on the bridge.
    _web(kube, "by cluster IP")
    cluster_ip = kube.get("service", "web")["spec"]["clusterIP"]
    deadline = time.monotonic() + 60  # until kube-proxy has written the Service's rules
    while True:
        try:
            with urllib.request.urlopen(f"http://{cluster_ip}/index.html", timeout=10) as answer:
                assert answer.read() == b"by cluster IP"
                return
        except urllib.error.URLError as error:
            assert time.monotonic() < deadline, f"{cluster_ip}: {error.reason!r}"
        time.sleep(1)


def test_the_host_is_refused_a_service_that_would_leave_the_machine(kube: Kube) -> None:
    # Endpoints outside the node's bridge (a kwok pod's address exists nowhere): refused at
    # once, never routed out to the network, and no hang.
    kube.apply(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "elsewhere"},
         "spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "elsewhere-1",
                      "labels": {"kubernetes.io/service-name": "elsewhere"}},
         "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.244.255.254"], "conditions": {"ready": True}}]},
    )  # fmt: skip
    cluster_ip = kube.get("service", "elsewhere")["spec"]["clusterIP"]
    _wait_for_service_rules(f"{cluster_ip}/32")
    started = time.monotonic()
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(f"http://{cluster_ip}/", timeout=10)
    assert isinstance(refused.value.reason, ConnectionRefusedError), refused.value.reason
    assert time.monotonic() - started < 5


def _wait_for_service_rules(address: str) -> None:
    """Until kube-proxy has written a DNAT for `address` (its rules follow the Service)."""
    deadline = time.monotonic() + 60
    while True:
        rules = subprocess.run(["iptables", "-w", "5", "-t", "nat", "-S", "KUBE-SERVICES"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
        if f"-d {address}" in rules:
            return
        assert time.monotonic() < deadline, f"kube-proxy wrote no rule for {address}"
        time.sleep(1)


def test_kubectl_logs_exec_and_port_forward_reach_the_node(kube: Kube) -> None:
    phase, logs = _shell_pod(kube, "talker", "for i in 1 2 3; do echo line $i; done")
    assert (phase, logs.splitlines()) == ("Succeeded", ["line 1", "line 2", "line 3"])
    _web(kube, "forwarded")
    assert kube.ok("exec", "deploy/web", "--", "cat", "/www/index.html") == "forwarded"
    with kube.port_forward("deploy/web", 8080) as port:
        url = f"http://127.0.0.1:{port}/index.html"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"forwarded"


# Each line prints NAME=what the pod got from the host's service under its example name.
_PROBE_SERVICES = r"""
echo "prometheus=$(wget -qO- http://prometheus.monitoring.svc:9090/-/ready)"
echo "redis=$( (printf 'PING\r\n'; sleep 1) | timeout 5 nc redis.ocr.svc 6379 | tr -d '\r')"
echo "mariadb=$(sleep 2 | timeout 3 nc mariadb.ocr.svc 3306 | grep -c MariaDB)"
# A Kafka ApiVersions v0 request (correlation id 1): only a broker answers it with bytes.
echo "kafka=$( (printf '\000\000\000\012\000\022\000\000\000\000\000\001\000\000'; sleep 2) \
  | timeout 5 nc kafka.kafka.svc 9092 | wc -c)"
"""


@pytest.mark.usefixtures("kafka_bootstrap", "mysql_url", "redis_url", "prometheus_url")
def test_host_services_answer_pods_under_the_example_names(kube: Kube) -> None:
    phase, logs = _shell_pod(kube, "services", _PROBE_SERVICES)
    assert phase == "Succeeded", logs
    got = dict(line.split("=", 1) for line in logs.splitlines() if "=" in line)
    assert "Ready" in got["prometheus"], logs
    assert got["redis"] == "+PONG", logs
    assert got["mariadb"] == "1", f"no MariaDB greeting: {logs}"
    assert int(got["kafka"]) > 0, f"no answer from the broker's pod listener: {logs}"
