"""Fixtures of the real-node tests: the node itself (started by `cluster.sh up`, which runs
`node.sh up`) and a throwaway namespace per test."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node._kube import NODE_NAME, NODE_SCRIPT, Kube, wait_for


def _node_problem(kubeconfig: Path) -> str | None:
    """None when the real node is registered and Ready, the reason otherwise."""
    done = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "get", "node", NODE_NAME, "-o", "json"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return f"node {NODE_NAME} is not registered: {done.stderr.strip()}"
    conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
    ready = {c["type"]: c for c in conditions}.get("Ready", {})
    if ready.get("status") != "True":
        return f"node {NODE_NAME} is not Ready: {ready.get('message', 'no Ready condition')}"
    return None


@pytest.fixture(scope="session")
def real_node(kubeconfig: Path) -> str:
    """The real node's name, once it is Ready (`node.sh up` is run when it is not)."""
    problem = _node_problem(kubeconfig)
    if problem is not None:
        started = subprocess.run(
            [str(NODE_SCRIPT), "up"], capture_output=True, text=True, timeout=1800, check=False
        )
        problem = _node_problem(kubeconfig)
        if problem is not None:
            tail = "\n".join((started.stdout + started.stderr).splitlines()[-15:])
            pytest.fail(f"{problem}\n`node.sh up` exited {started.returncode}:\n{tail}")
    return NODE_NAME


@pytest.fixture
def kube(kubeconfig: Path, real_node: str) -> Iterator[Kube]:
    """kubectl in a fresh namespace, deleted (without waiting) after the test."""
    namespace = f"node-{uuid.uuid4().hex[:8]}"
    base = Kube(kubeconfig, "default")
    base.ok("create", "namespace", namespace)
    kube = Kube(kubeconfig, namespace)
    # Pods need the namespace's default ServiceAccount, which arrives asynchronously.
    wait_for("the default ServiceAccount", lambda: kube.run("get", "sa", "default").returncode == 0)
    yield kube
    base.run("delete", "namespace", namespace, "--wait=false")
