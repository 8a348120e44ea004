"""Deleting an OCRServing while the operator is busy with it: in the middle of an advisor
evaluation (Prometheus answers slowly), of a reconcile and of a mode transition (Kafka
answers slowly). On the local control plane (kwok pods) and the real broker; the operator
runs under KopfRunner.

The slow peer is a TCP listener that holds each connection (and then, for Kafka, relays it
to the real broker), so the evaluation or the reconcile is provably in flight when the test
deletes the resource.
"""

from __future__ import annotations

import contextlib
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
RECONCILE_DELAY_S = 8.0  # a slow Kafka bootstrap holds each reconcile pass this long
SETUP_TIMEOUT_S = 300.0  # kwok gets slow when other suites share the cluster


class SlowPeer:
    """A TCP peer that holds every connection for `delay` seconds (None: forever) and then,
    with an `upstream`, relays it there: a slow Prometheus or a slow Kafka bootstrap."""

    def __init__(self, delay: float | None = None, upstream: str | None = None) -> None:
        self._delay = delay
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._sockets: list[socket.socket] = []
        self._arrivals: list[float] = []
        self._held = 0
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
            return self._arrivals[0] if self._arrivals else None

    def holding(self) -> bool:
        """True while a connection is being held (its caller is in flight)."""
        with self._lock:
            return self._held > 0

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._arrivals.append(time.monotonic())
                self._sockets.append(connection)
                self._held += 1
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        self._closing.wait(self._delay)
        with self._lock:
            self._held -= 1
        if self._upstream is None or self._closing.is_set():
            return
        host, port = self._upstream.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        with self._lock:
            self._sockets.append(upstream)
        threading.Thread(target=_pump, args=(upstream, connection), daemon=True).start()
        _pump(connection, upstream)

    def __enter__(self) -> SlowPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for connection in self._sockets:
                connection.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


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
    # so one resource can be pointed at a slow one.
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


def delete_and_time(namespace: str, name: str, cascade: str = "background") -> float:
    """Seconds from `kubectl delete` (foreground: from the children being gone) until the
    OCRServing is gone; then waits for its children to be garbage-collected."""
    kubectl("delete", "ocrs", name, "-n", namespace, f"--cascade={cascade}", "--wait=false")
    if cascade == "foreground":
        seconds_until(lambda: not children(namespace, name), "children gone", limit=120)
    deleted_in = seconds_until(
        lambda: get("ocrs", name, namespace) is None, "OCRServing gone", limit=120
    )
    wait_for(lambda: not children(namespace, name), "children garbage-collected")
    return deleted_in


def test_deleting_during_an_advisor_evaluation_completes_at_once(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    with SlowPeer(delay=None) as prometheus:
        advisor = {
            "prometheusUrl": f"http://{prometheus.address}",
            "queryTimeoutSeconds": SLOW_QUERY_TIMEOUT_S,
        }
        create_ready_stack(namespace, "evaluating", kafka_bootstrap, advisor)
        wait_for(prometheus.holding, "the advisor's query in flight", timeout=SETUP_TIMEOUT_S)

        deleted_in = delete_and_time(namespace, "evaluating")
        assert prometheus.holding(), "the evaluation had ended before the deletion: no race"
        assert deleted_in < DELETION_BOUND_S, f"deletion took {deleted_in:.1f} s"


def test_deleting_during_a_reconcile_completes_at_once(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    # Every reconcile pass waits RECONCILE_DELAY_S for Kafka, then succeeds and changes
    # nothing: no status write (and so no event) follows the deletion.
    with SlowPeer(delay=RECONCILE_DELAY_S, upstream=kafka_bootstrap) as kafka:
        create_ready_stack(namespace, "reconciling", kafka.address, {})
        wait_for(kafka.holding, "a reconcile in flight", timeout=SETUP_TIMEOUT_S)

        deleted_in = delete_and_time(namespace, "reconciling")
        assert deleted_in < DELETION_BOUND_S, f"deletion took {deleted_in:.1f} s"


@pytest.mark.parametrize("cascade", ["background", "foreground"])
def test_deleting_during_a_transition_completes_once_children_are_gone(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str, cascade: str
) -> None:
    name = f"moving-{cascade}"
    create_ready_stack(namespace, name, kafka_bootstrap, {})
    assert children(namespace, name), "the stack has no Deployments to delete"
    with SlowPeer(delay=RECONCILE_DELAY_S, upstream=kafka_bootstrap) as kafka:
        # Writer needs its results topic: the transition's pass now waits in the topic step.
        patch = json.dumps(
            {"spec": {"architecture": {"mode": "Writer"},
                      "kafka": {"bootstrapServers": kafka.address}}}
        )  # fmt: skip
        kubectl("patch", "ocrs", name, "-n", namespace, "--type=merge", "-p", patch)
        wait_for(kafka.holding, "the transition's topic step in flight", timeout=SETUP_TIMEOUT_S)
        body = get("ocrs", name, namespace)
        assert (body or {}).get("status", {}).get("activeMode") != "Writer"

        deleted_in = delete_and_time(namespace, name, cascade)
        assert deleted_in < DELETION_BOUND_S, f"deletion took {deleted_in:.1f} s"
