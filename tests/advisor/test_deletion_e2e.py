"""Deleting an OCRServing while the operator is busy with it: in the middle of an advisor
evaluation (Prometheus answers slowly) and of a mode transition (Kafka answers slowly). On
the local control plane (kwok pods) and the real broker; the operator runs under KopfRunner.

The slow peer is a TCP listener that accepts connections and never answers, so the
evaluation or the reconcile is provably in flight (its connection is open) when the test
deletes the resource, and stays in flight far longer than the deletion may take.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from ocr_operator.advisor.handlers import register_advisor
from ocr_operator.handlers import register
from ocr_operator.settings import OperatorSettings
from tests.operator._cluster import (
    apply_documents,
    condition,
    get,
    install_crds,
    kubectl,
    names,
    wait_for,
)
from tests.operator._examples import ROOT, example_documents

pytestmark = pytest.mark.e2e

# A deletion completes within this many seconds of its children being gone.
DELETION_BOUND_S = 10.0
SLOW_QUERY_TIMEOUT_S = 90  # the advisor's Prometheus query stays in flight this long
SETUP_TIMEOUT_S = 300.0  # kwok gets slow when other suites share the cluster


class SilentPeer:
    """Accepts TCP connections and never answers; remembers when each one arrived."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._accepted: list[tuple[float, socket.socket]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def first_arrival(self) -> float | None:
        """Monotonic time of the first connection, or None."""
        with self._lock:
            return self._accepted[0][0] if self._accepted else None

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._accepted.append((time.monotonic(), connection))

    def __enter__(self) -> SilentPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for _, connection in self._accepted:
                connection.close()


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-deletion-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(namespace: str) -> Iterator[KopfRunner]:
    # No operator-wide Kafka override: each resource's spec.kafka.bootstrapServers is used,
    # so one resource can be pointed at a silent peer.
    settings = OperatorSettings(resync_seconds=2, wait_seconds=1, error_backoff_seconds=2)
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    register_advisor(registry, settings)
    with KopfRunner(["run", "--standalone", "--namespace", namespace], registry=registry,
                    timeout=60) as runner:  # fmt: skip
        yield runner
        kubectl("delete", "ocrs", "--all", "-n", namespace, "--wait=true", "--timeout=60s")
    assert runner.exception is None


def create_ready_stack(
    namespace: str, name: str, bootstrap: str, advisor: dict[str, Any]
) -> dict[str, Any]:
    documents = example_documents("standard")
    resource = copy.deepcopy(next(d for d in documents if d["kind"] == "OCRServing"))
    resource["metadata"]["name"] = name
    spec = resource["spec"]
    spec["architecture"] = {"mode": "Standard", "policy": "Manual"}
    spec["api"]["replicas"] = 1
    spec["worker"]["replicas"] = 1
    spec["kafka"]["bootstrapServers"] = bootstrap
    spec["kafka"]["topics"] = {
        "jobs": f"{namespace}-{name}-jobs",
        "results": f"{namespace}-{name}-results",
        "deadLetter": f"{namespace}-{name}-dlq",
    }
    spec["advisor"] = {"intervalSeconds": 1, **advisor}
    apply_documents(namespace, [d for d in documents if d["kind"] == "Secret"] + [resource])

    def ready() -> dict[str, Any] | None:
        body = get("ocrs", name, namespace)
        return body if condition(body, "Ready").get("status") == "True" else None

    result: dict[str, Any] = wait_for(ready, f"{name} Ready", timeout=SETUP_TIMEOUT_S)
    return result


def children(namespace: str, name: str) -> set[str]:
    return names("deployments", namespace, f"app.kubernetes.io/instance={name}")


def seconds_until(probe: Callable[[], bool], what: str, limit: float) -> float:
    """Seconds until `probe` holds, polled every 0.1 s; fails after `limit`."""
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > limit:
            raise AssertionError(f"{what}: not within {limit:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - start


def wait_in_flight(peer: SilentPeer, what: str) -> float:
    arrival: float = wait_for(peer.first_arrival, what, timeout=SETUP_TIMEOUT_S)
    return arrival


def test_deleting_during_an_advisor_evaluation_completes_at_once(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    with SilentPeer() as prometheus:
        advisor = {
            "prometheusUrl": f"http://{prometheus.address}",
            "queryTimeoutSeconds": SLOW_QUERY_TIMEOUT_S,
        }
        create_ready_stack(namespace, "evaluating", kafka_bootstrap, advisor)
        arrival = wait_in_flight(prometheus, "the advisor's query to the silent Prometheus")

        kubectl("delete", "ocrs", "evaluating", "-n", namespace, "--wait=false")
        deleted_in = seconds_until(
            lambda: get("ocrs", "evaluating", namespace) is None,
            "OCRServing gone after delete", limit=60,
        )  # fmt: skip
        still_in_flight = time.monotonic() - arrival < SLOW_QUERY_TIMEOUT_S
        assert still_in_flight, "the evaluation had ended before the deletion: not a race"
        assert deleted_in < DELETION_BOUND_S, f"deletion took {deleted_in:.1f} s"
        # The children follow through the owner references (background cascade).
        wait_for(lambda: not children(namespace, "evaluating"), "children garbage-collected")


def test_deleting_during_a_transition_completes_once_children_are_gone(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    create_ready_stack(namespace, "moving", kafka_bootstrap, {})
    assert children(namespace, "moving"), "the stack has no Deployments to delete"
    with SilentPeer() as kafka:
        # Writer needs its results topic: the transition's topic step now hangs on Kafka.
        patch = json.dumps(
            {"spec": {"architecture": {"mode": "Writer"},
                      "kafka": {"bootstrapServers": kafka.address}}}
        )  # fmt: skip
        kubectl("patch", "ocrs", "moving", "-n", namespace, "--type=merge", "-p", patch)
        wait_in_flight(kafka, "the transition's topic step connecting to the silent Kafka")
        body = get("ocrs", "moving", namespace)
        assert (body or {}).get("status", {}).get("activeMode") != "Writer"

        # Foreground: the apiserver deletes the children first, then the resource may go.
        kubectl("delete", "ocrs", "moving", "-n", namespace, "--cascade=foreground",
                "--wait=false")  # fmt: skip
        seconds_until(lambda: not children(namespace, "moving"), "children gone", limit=120)
        deleted_in = seconds_until(
            lambda: get("ocrs", "moving", namespace) is None,
            "OCRServing gone after its children", limit=60,
        )  # fmt: skip
        assert deleted_in < DELETION_BOUND_S, f"deletion took {deleted_in:.1f} s after children"
