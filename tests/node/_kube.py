"""kubectl helpers for the tests of the real node (`scripts/infra/node.sh`): manifests that
land on it, waits on pods, and the node's fixed names."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPT = REPO_ROOT / "scripts" / "infra" / "node.sh"
NODE_NAME = "ocr-node"
TAINT_KEY = "ocr-serving.local/real-node"
NODE_SELECTOR = {"ocr-serving.local/node": "real"}
POD_CIDR_PREFIX = "10.90."
TEST_IMAGE = "localhost/ocr-node-test:busybox"
WAIT_S = 300.0  # a loaded 2-core node starts a pod in seconds, sometimes minutes

Json = dict[str, Any]
T = TypeVar("T")


def on_real_node(spec: Json) -> Json:
    """A pod spec that asks for the real node: its label and a toleration of its taint."""
    toleration = {"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
    return {**spec, "nodeSelector": NODE_SELECTOR, "tolerations": [toleration]}


# BestEffort pods get 2 CPU shares: on a busy 2-core node they barely run at all.
SMALL_REQUESTS: Json = {"requests": {"cpu": "50m", "memory": "16Mi"}}


def container(name: str, image: str, command: Sequence[str] = (), **extra: Any) -> Json:
    spec: Json = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                  "resources": SMALL_REQUESTS, **extra}  # fmt: skip
    if command:
        spec["command"] = list(command)
    return spec


def pod(name: str, *containers: Json, labels: dict[str, str] | None = None) -> Json:
    spec = on_real_node({"containers": list(containers), "restartPolicy": "Never"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {**spec, "terminationGracePeriodSeconds": 1},
    }


def deployment(name: str, pod_spec: Json, replicas: int = 1) -> Json:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def service(name: str, port: int, target_port: int) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": port, "targetPort": target_port}],
        },
    }


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """Polls probe() until it returns something truthy; fails after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Kube:
    """kubectl bound to the admin kubeconfig and one namespace."""

    kubeconfig: Path
    namespace: str

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", f"--kubeconfig={self.kubeconfig}", "-n", self.namespace, *args]
        return subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )

    def ok(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        done = self.run(*args, stdin=stdin, timeout=timeout)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout

    def apply(self, *manifests: Json) -> None:
        self.ok(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)}),
        )

    def get(self, *args: str) -> Json:
        body: Json = json.loads(self.ok("get", *args, "-o", "json"))
        return body

    def pod_status(self, name: str) -> Json:
        status: Json = self.get("pod", name).get("status", {})
        return status

    def wait_pod_done(self, name: str, timeout: float = WAIT_S) -> str:
        """Waits until the pod Succeeded or Failed; returns the phase."""

        def finished() -> str | None:
            phase = str(self.pod_status(name).get("phase"))
            return phase if phase in ("Succeeded", "Failed") else None

        return wait_for(f"pod {name} to finish ({self.describe(name)})", finished, timeout)

    def wait_ready(self, kind_name: str, timeout: float = WAIT_S) -> None:
        if kind_name.startswith("deployment/"):
            args = ("rollout", "status", kind_name, f"--timeout={int(timeout)}s")
        else:
            args = ("wait", "--for=condition=Ready", kind_name, f"--timeout={int(timeout)}s")
        done = self.run(*args, timeout=timeout + 30)
        assert done.returncode == 0, (
            f"{kind_name} not ready: {done.stdout}{done.stderr}\n{self.describe_all()}"
        )

    def logs(self, target: str) -> str:
        return self.ok("logs", target)

    def describe(self, name: str) -> str:
        done = self.run("get", "pod", name, "-o", "wide")
        return (done.stdout + done.stderr).strip()

    def describe_all(self) -> str:
        done = self.run("get", "pods,events", "-o", "wide")
        return (done.stdout + done.stderr)[-3000:]

    @contextmanager
    def port_forward(self, target: str, remote_port: int) -> Iterator[int]:
        """`kubectl port-forward` to a free local port; yields that port."""
        cmd = ["kubectl", f"--kubeconfig={self.kubeconfig}", "-n", self.namespace,
               "port-forward", target, f":{remote_port}"]  # fmt: skip
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+) ->", first)
            assert match, f"port-forward said {first!r}; stderr: {_drain(process)}"
            yield int(match.group(1))
        finally:
            process.terminate()
            process.wait(timeout=10)


def _drain(process: subprocess.Popen[str]) -> str:
    process.terminate()
    _, err = process.communicate(timeout=10)
    return err
