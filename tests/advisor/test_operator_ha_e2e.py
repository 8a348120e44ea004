"""Two operator processes with leader election, as the chart runs them (`ocr-operator run
--leader-elect`, two replicas), against the local control plane, the real Kafka broker and the
real Prometheus. Only the Lease holder reconciles and runs the advisor; killing it (SIGKILL,
no chance to release the Lease) hands the stack to the other within 30 s, and the advisor's
transitions are recorded once each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.advisor.exporter import Exporter
from tests.advisor.test_advisor_e2e import (
    DOWNSTREAM_BOUND,
    SATURATED,
    children,
    create_stack,
    ready_in,
    wait_for,
)
from tests.operator._cluster import get, install_crds, kubectl
from tests.operator._cluster import wait_for as wait_briefly
from tests.operator._examples import ROOT
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

LEASE = "ocr-operator"
# The chart's Lease timings (15 s duration, 2 s retry) leave a standby at most 17 s after the
# leader's last renewal; the rest of the 30 s is for kopf to start and resume the stack.
TAKEOVER_S = 30.0
STACK = "ha"


@dataclass
class Replica:
    identity: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=3) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body

    def health_once_listening(self) -> dict[str, Any]:
        """`health()`, or {} while the process is still starting (its port not yet open): the
        two replicas start together, and on a loaded machine one may win the Lease before the
        other has imported its modules."""
        assert self.process.poll() is None, f"{self.identity} exited:\n{self.tail()}"
        try:
            return self.health()
        except urllib.error.URLError as error:
            if isinstance(error.reason, ConnectionRefusedError):
                return {}
            raise

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=3) as r:
            text = r.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def tail(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-30:])


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-ha-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def replicas(
    namespace: str,
    kafka_bootstrap: str,
    prometheus_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Replica]]:
    work = tmp_path_factory.mktemp("ha")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OCR_")},
        "OCR_OPERATOR_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "OCR_OPERATOR_PROMETHEUS_URL": prometheus_url,
        "OCR_OPERATOR_RESYNC_SECONDS": "2",
        "OCR_OPERATOR_WAIT_SECONDS": "1",
        "OCR_OPERATOR_ERROR_BACKOFF_SECONDS": "2",
    }
    running = {
        identity: start_replica(identity, namespace, LEASE, env, work)
        for identity in ("replica-a", "replica-b")
    }
    try:
        yield running
        kubectl("delete", "ocrs", "--all", "-n", namespace, "--wait=true", "--timeout=60s")
    finally:
        stop_replicas(list(running.values()))


def start_replica(
    identity: str, namespace: str, lease: str, env: dict[str, str], work: Path
) -> Replica:
    """`ocr-operator run --leader-elect` as the chart runs it, on this machine."""
    port, log = free_port(), work / f"{identity}.log"
    command = [
        str(Path(sys.executable).parent / "ocr-operator"), "run", "--standalone",
        f"--namespace={namespace}", "--leader-elect", f"--lease-name={lease}",
        f"--http=127.0.0.1:{port}",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            env={**env, "OCR_OPERATOR_IDENTITY": identity},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Replica(identity, port, process, log)


def stop_replicas(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)
    for replica in replicas:
        try:
            replica.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()


@pytest.fixture
def exporter(prometheus_targets: Callable[..., None]) -> Iterator[Exporter]:
    """A driven exporter scraped as the stack's pods."""
    with Exporter() as running:
        yield running


def holder(namespace: str, lease_name: str = LEASE) -> str | None:
    lease = get("lease", lease_name, namespace)
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def _reconciles(replica: Replica) -> float:
    return sum(
        value
        for (name, labels), value in replica.metrics().items()
        if name == "ocr_operator_reconcile_duration_seconds_count"
    )


def _transition_events(namespace: str) -> list[str]:
    selector = f"involvedObject.name={STACK},reason=TransitionApplied"
    out = kubectl("get", "events", "-n", namespace, "--field-selector", selector, "-o", "json")
    return [item["message"] for item in json.loads(out)["items"]]


def test_only_the_leader_works_and_the_standby_takes_over_when_it_is_killed(
    replicas: dict[str, Replica],
    namespace: str,
    exporter: Exporter,
    prometheus_targets: Callable[..., None],
) -> None:
    leader_id = wait_briefly(lambda: holder(namespace), "a Lease holder", timeout=60)
    leader = replicas[leader_id]
    (standby,) = [r for r in replicas.values() if r.identity != leader_id]
    wait_briefly(
        lambda: standby.health_once_listening().get("leader") is False, "the standby's /healthz"
    )
    assert leader.health() == {"status": "ok", "leader": True}

    exporter.set(jobs_topic=f"{namespace}-{STACK}-jobs")
    prometheus_targets([exporter.address], labels={"namespace": namespace, "ocrserving": STACK})
    create_stack(namespace, STACK, "Auto")
    exporter.set(**SATURATED)
    wait_for(lambda: ready_in(namespace, STACK, "Batched"), f"{STACK} Ready in Batched")
    # The standby reconciled nothing, and says it does not lead; the leader did the work.
    assert _reconciles(standby) == 0
    assert standby.metrics()[("ocr_operator_leader", frozenset())] == 0
    assert _reconciles(leader) > 0

    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(timeout=10)
    try:
        wait_briefly(
            lambda: holder(namespace) == standby.identity, "the standby to lead", TAKEOVER_S
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\nstandby log:\n{standby.tail()}") from None
    wait_briefly(lambda: standby.health().get("leader") is True, "the new leader's /healthz")

    exporter.set(**DOWNSTREAM_BOUND)
    wait_for(lambda: ready_in(namespace, STACK, "Writer"), f"{STACK} Ready in Writer")
    expected = {f"{STACK}-api": "-", f"{STACK}-worker": "writer", f"{STACK}-writer": "writer"}
    wait_for(lambda: children(namespace, STACK) == expected, f"children of Writer: {expected}")

    resource = get("ocrs", STACK, namespace)
    assert resource is not None
    moves = [(t["from"], t["to"]) for t in resource["status"]["transitions"]]
    assert moves == [("Standard", "Batched"), ("Batched", "Writer")]  # each once
    assert len(_transition_events(namespace)) == 2
    # The new leader's /metrics after its reconciles: the move it made, counted once.
    seen = standby.metrics()
    moved = frozenset(
        {"namespace": namespace, "ocrserving": STACK, "from_mode": "Batched",
         "to_mode": "Writer", "rule": "DownstreamBound"}.items()
    )  # fmt: skip
    assert seen[("ocr_operator_transitions_total", moved)] == 1
    assert seen[("ocr_operator_leader", frozenset())] == 1
    assert _reconciles(standby) > 0
    lease = get("lease", LEASE, namespace)
    assert lease is not None and lease["spec"]["leaseTransitions"] == 1


def test_a_graceful_stop_releases_the_lease_and_a_taken_lease_stops_the_leader(
    namespace: str, tmp_path: Path
) -> None:
    """Without stacks (nothing to reconcile): a leader stopped by SIGTERM gives the Lease up
    (a rollout need not wait it out); a leader that finds another holder in the Lease stops
    kopf and exits 1, so that its pod restarts as a standby."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")}
    lease = "ocr-operator-steps-down"
    started: list[Replica] = []
    try:
        first = start_replica("first", namespace, lease, env, tmp_path)
        started.append(first)
        wait_briefly(lambda: holder(namespace, lease) == "first", "first to lead", timeout=60)
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=60) == 0, first.tail()
        assert holder(namespace, lease) is None, "the Lease was not released"

        second = start_replica("second", namespace, lease, env, tmp_path)
        started.append(second)
        wait_briefly(lambda: holder(namespace, lease) == "second", "second to lead", timeout=60)
        kubectl("patch", "lease", lease, "-n", namespace, "--type=merge",
                "-p", '{"spec":{"holderIdentity":"intruder"}}')  # fmt: skip
        assert second.process.wait(timeout=60) == 1, second.tail()
        assert "lost the lead as second: taken over by intruder" in second.log.read_text()
    finally:
        stop_replicas(started)
