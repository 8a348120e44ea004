"""Scale to zero on the local cluster's real node: KEDA's operator (scripts/infra/keda.sh,
built from its module with the Kafka scaler) and ours (its Helm chart), both as pods;
`examples/scale-to-zero.yaml` applied as shipped. With no job waiting, KEDA takes the workers
to zero; a job wakes one, which reads it; once idle for the cooldown the workers go back to
zero, and the operator's resyncs leave that zero alone.

Needs `make cluster-up`, `scripts/infra/node.sh up` and `make images`; KEDA is built and
installed here when it is missing, and removed afterwards. Other stacks of the namespace
(the README's test leaves one) are deleted first: the 2-CPU node has room for one. Fails
(never skips) with what to run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.golden._local import (
    VALUES,
    api_key,
    bearer,
    documents,
    get_json,
    installed_operator,
    png,
    port_forward,
    post_image,
    rows,
    run_tool,
)
from tests.operator._cluster import condition, get, kubectl, wait_for
from tests.operator._examples import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

NS, STACK = "ocr", "scale-to-zero"
WORKER = f"{STACK}-worker"
KEDA_SH = ROOT / "scripts" / "infra" / "keda.sh"
EXAMPLE = ROOT / "examples" / "scale-to-zero.yaml"
# Short enough for a test; the example's own 120 s is what a user would start from.
COOLDOWN_S = 15
# KEDA polls every 15 s; the woken worker then loads its model on a shared 2-core node.
WAKE_TIMEOUT = 420
# Two of the operator's resync periods must pass with the workers at zero.
RESYNC_S = float(yaml.safe_load(VALUES.read_text())["resyncSeconds"])


@pytest.fixture(scope="module")
def keda() -> Iterator[None]:
    """KEDA for this module only: the 2-CPU node has no room for its pod beside the rollouts
    of the other tests' stacks."""
    run_tool([str(KEDA_SH), "up"])
    yield
    # KEDA's finalizer must be lifted by KEDA itself: it goes once the stack's ScaledObject did.
    wait_for(lambda: get("scaledobject", WORKER, NS) is None, "the ScaledObject deleted",
             timeout=180)  # fmt: skip
    run_tool([str(KEDA_SH), "down"])


@pytest.fixture(scope="module")
def stack(kubeconfig: Any, keda: None) -> Iterator[None]:
    with installed_operator(NS, STACK):
        # The 2-CPU node holds one stack: the README's test leaves `standard` running.
        kubectl("delete", "ocrs", "--all", "-n", NS, "--wait=true", "--timeout=140s")
        kubectl("apply", "-n", NS, "-f", str(EXAMPLE))
        autoscaling = {"worker": {"autoscaling": {"cooldownSeconds": COOLDOWN_S}}}
        kubectl("patch", "ocrs", STACK, "-n", NS, "--type=merge",
                "-p", json.dumps({"spec": autoscaling}))  # fmt: skip
        yield


def _worker_replicas() -> int | None:
    deployment = get("deployment", WORKER, NS)
    return None if deployment is None else int(deployment["spec"].get("replicas", 1))


def _running_workers() -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-n", NS, "-l",
                  f"app.kubernetes.io/instance={STACK},app.kubernetes.io/component=worker",
                  "-o", "json")  # fmt: skip
    pods: list[dict[str, Any]] = json.loads(out)["items"]
    return [p for p in pods if p["status"].get("phase") == "Running"]


def _at_zero() -> bool:
    return _worker_replicas() == 0 and not _running_workers()


def _ready() -> dict[str, Any] | None:
    resource = get("ocrs", STACK, NS)
    if resource is None or condition(resource, "Ready").get("status") != "True":
        return None
    return resource


def test_an_idle_stack_has_no_workers_and_keda_owns_their_scale(stack: None) -> None:
    wait_for(_ready, f"{STACK} Ready", timeout=WAKE_TIMEOUT)
    wait_for(_at_zero, "the workers scaled to zero", timeout=WAKE_TIMEOUT)
    scaled = get("scaledobject", WORKER, NS)
    assert scaled is not None
    assert scaled["metadata"]["ownerReferences"][0]["kind"] == "OCRServing"
    assert scaled["spec"]["minReplicaCount"] == 0
    assert condition(scaled, "Ready")["status"] == "True", scaled["status"]
    assert condition(scaled, "Active")["status"] != "True", scaled["status"]
    hpa = get("hpa", f"keda-hpa-{WORKER}", NS)
    assert hpa is not None, "KEDA created no HPA for the workers"
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ScaledObject"
    # The stack stays Ready with no worker: zero is what was asked for.
    assert _ready() is not None


def test_a_job_wakes_a_worker_which_reads_it(stack: None) -> None:
    wait_for(_at_zero, "the workers at zero", timeout=WAKE_TIMEOUT)
    document = documents()[0]
    key = api_key(NS, STACK)
    with port_forward(NS, f"svc/{STACK}-api") as base:
        status, accepted = post_image(base, "/v1/jobs", png(document), headers=bearer(key))
        assert status == 202, accepted
        job_id = accepted["job_id"]
        woken: list[str] = []

        def finished() -> dict[str, Any] | None:
            woken.extend(p["spec"]["nodeName"] for p in _running_workers())
            code, view = get_json(base, f"/v1/jobs/{job_id}", headers=bearer(key))
            assert code == 200, view
            return view if view["status"] in ("succeeded", "failed") else None

        view = wait_for(finished, "the job read by a woken worker", timeout=WAKE_TIMEOUT)
    assert view["status"] == "succeeded", view
    assert rows(view) == list(document.lines)
    assert set(woken) == {"ocr-node"}, woken
    scaled = get("scaledobject", WORKER, NS)
    assert scaled is not None
    assert scaled["status"].get("lastActiveTime"), scaled["status"]


def test_idle_workers_go_back_to_zero_and_the_operator_leaves_it(stack: None) -> None:
    wait_for(lambda: _worker_replicas() == 0, "the workers back at zero after the cooldown",
             timeout=WAKE_TIMEOUT)  # fmt: skip
    wait_for(lambda: not _running_workers(), "the last worker pod gone", timeout=120)
    time.sleep(2 * RESYNC_S + 5)
    assert _worker_replicas() == 0, "a resync scaled the workers up again"
    after = get("ocrs", STACK, NS)
    assert after is not None and condition(after, "Ready")["status"] == "True"
