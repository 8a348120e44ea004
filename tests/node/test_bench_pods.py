"""The benchmarks' pods suite against the real node: the operator (a host process, as the
suite runs it) deploys a stack on the node, jobs go in through the API Service's cluster IP
with the stack's API key and come out finished in the database, the suite finds the pods'
processes for its CPU figures, and a mode switch by patch lands. What `make bench` relies
on, without its timings."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.config import QUICK
from benchmarks.context import Ctx
from benchmarks.ocrserving_client import kubectl
from benchmarks.pod_stack import NAMESPACE, PodSpec, PodStack, require_node
from benchmarks.runner import warm_up
from benchmarks.services import Services

from benchmarks import pods_bench

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctx(
    tmp_path: Path,
    *,
    kubeconfig: Path,
    real_node: str,
    kafka_bootstrap: str,
    mysql_url: str,
    redis_url: str,
    prometheus_url: str,
) -> Ctx:
    services = Services(
        kafka_bootstrap=kafka_bootstrap,
        database_url=mysql_url,
        redis_url=redis_url,
        prometheus_url=prometheus_url,
        kubeconfig=str(kubeconfig),
    )
    return Ctx(config=QUICK, services=services, results_dir=tmp_path, profile=False)


@pytest.mark.timeout(900)
def test_a_stack_in_pods_serves_jobs_through_its_cluster_ip(ctx: Ctx) -> None:
    require_node()  # the runtime image is on the node: `make images` ran
    spec = PodSpec(label="suite-check", mode="Standard", engine="noop")
    with pods_bench.operator(ctx), PodStack(ctx.services, spec, ready_timeout=300) as pods:
        assert pods.api_url.startswith("http://10.96."), pods.api_url
        assert pods.api_key
        warm_up(pods, 20)  # raises unless all 20 were accepted and finished
        measured = pods.measured_pids()
        assert {"pod api-0", "pod worker-0", "forward mariadb"} <= measured.keys(), measured
        assert pods.switch("Batched") > 0
        warm_up(pods, 20)
        assert "pod worker-0" in pods.measured_pids()
    left = kubectl("get", "ocrs", "-n", NAMESPACE, "-o", "name")
    assert "suite-check" not in left
