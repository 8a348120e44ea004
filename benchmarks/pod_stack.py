"""Our runtime as pods on the local cluster's real node: an `OCRServing` that the operator
(a host process here, started by the suite) renders into Deployments, a Service and a
migration Job, run by the node's containerd from the images `make images` built. The load
generator posts to the API Service's cluster IP, so kube-proxy spreads requests over the API
pods as it would for any client in a cluster; the API is authenticated, as deployed."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks import procs
from benchmarks.jobs_db import JobTable
from benchmarks.ocrserving_client import GROUP, VERSION, is_ready, kubectl
from benchmarks.procs import ProcessFailedError
from benchmarks.services import MariaDb, RunTopics, Services, wait_kafka
from benchmarks.stack import System

NAMESPACE = "bench-pods"
NODE = "ocr-node"
RUNTIME_IMAGE = "localhost/ocr-runtime:dev-onnx"
NODE_SH = Path(__file__).resolve().parents[1] / "scripts" / "infra" / "node.sh"
# Where the node's pods reach the host's services (socat forwarders, see node.sh).
POD_KAFKA = "kafka.kafka.svc:9092"
POD_MARIADB = ("mariadb.ocr.svc", 3306)
FORWARDED_MARIADB = ("10.90.0.1", 3306)  # where that Service's endpoint, the forwarder, listens
# CPU requests per pod: their sum, with one surge pod of a rollout, fits the node's 2 CPUs.
# No CPU limit, as the host processes have none: requests only weigh the pods against each
# other when the cores are contended.
REQUESTS = {"api": "400m", "worker": "400m", "writer": "200m"}
MEMORY_LIMIT = {"noop": "512Mi", "onnx": "2Gi"}


class NodeMissingError(RuntimeError):
    """The real node, its images or the cluster is not there: what to run is in the message."""


def require_node() -> None:
    """The real node Ready with the runtime image loaded, or NodeMissingError."""
    status = subprocess.run(
        [str(NODE_SH), "status"], capture_output=True, text=True, timeout=120, check=False
    )
    if status.returncode != 0:
        raise NodeMissingError(
            f"the real node is not running ({status.stdout.strip()[-300:]}): run `make cluster-up`"
        )
    images = subprocess.run(
        [str(NODE_SH), "images"], capture_output=True, text=True, timeout=120, check=False
    )
    if RUNTIME_IMAGE not in images.stdout.split():
        raise NodeMissingError(f"{RUNTIME_IMAGE} is not on the real node: run `make images`")


@dataclass(frozen=True)
class PodSpec:
    """One configuration of the stack in pods (what `StackSpec` is for host processes)."""

    label: str
    mode: str  # Standard | Batched | Writer
    engine: str  # onnx | noop
    batch_max_size: int = 8
    batch_max_wait_ms: int = 20
    partitions: int = 2
    api_replicas: int = 1

    def settings(self, mode: str | None = None) -> dict[str, object]:
        """What the stack runs with, in `mode` (default: the mode it is applied in)."""
        mode = mode or self.mode
        return {
            "mode": mode,
            "engine": self.engine,
            "batch_max_size": self.batch_max_size,
            "batch_max_wait_ms": self.batch_max_wait_ms,
            "api_replicas": self.api_replicas,
            "workers": 1,
            "writers": 1 if mode == "Writer" else 0,
            "partitions": self.partitions,
            "cpu_requests": REQUESTS,
            "memory_limit": MEMORY_LIMIT[self.engine],
        }


def _component(replicas: int, engine: str, part: str) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "resources": {
            "requests": {"cpu": REQUESTS[part], "memory": "128Mi"},
            "limits": {"memory": MEMORY_LIMIT[engine]},
        },
    }


def ocrserving(spec: PodSpec, topics: RunTopics) -> dict[str, Any]:
    """The resource: topics made by the suite (the operator, on the host, cannot resolve the
    pods' broker address), no PodDisruptionBudget (one replica each)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OCRServing",
        "metadata": {"name": spec.label, "namespace": NAMESPACE},
        "spec": {
            "architecture": {"mode": spec.mode, "policy": "Manual"},
            "engine": {"kind": spec.engine},
            "batching": {"maxSize": spec.batch_max_size, "maxWaitMs": spec.batch_max_wait_ms},
            "api": _component(spec.api_replicas, spec.engine, "api"),
            "worker": _component(1, spec.engine, "worker"),
            "writer": _component(1, spec.engine, "writer"),
            "availability": {"podDisruptionBudget": {"enabled": False}},
            "logLevel": "WARNING",
            "kafka": {
                "bootstrapServers": POD_KAFKA,
                "partitions": spec.partitions,
                "management": "External",
                "topics": {
                    "jobs": topics.jobs,
                    "results": topics.results,
                    "deadLetter": topics.dead_letter,
                },
                "consumerGroup": topics.consumer_group,
                "writerGroup": topics.writer_group,
            },
            "database": {"urlSecretRef": {"name": f"{spec.label}-db", "key": "url"}},
        },
    }


def pod_database_url(host_url: str, database: str) -> str:
    """The host's database URL as the pods reach the same server."""
    host, port = POD_MARIADB
    url = make_url(host_url).set(host=host, port=port, database=database)
    return url.render_as_string(hide_password=False)


def host_forwarded_database_url(host_url: str) -> str:
    """The host's database URL through the forwarder the pods' connections pass."""
    host, port = FORWARDED_MARIADB
    return make_url(host_url).set(host=host, port=port).render_as_string(hide_password=False)


def pod_processes(uid: str, proc: Path = Path("/proc")) -> list[int]:
    """Processes of the pod `uid` (its cgroup path names `pod<uid>`), the sandbox's pause
    process left out; the node's containers run on this kernel."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if f"/pod{uid}/" not in (entry / "cgroup").read_text():
                continue
            if (entry / "comm").read_text().strip() != "pause":
                found.append(int(entry.name))
    return found


class PodStack(System):
    """One `OCRServing` in pods; `switch` moves it to another mode, as users do."""

    def __init__(self, services: Services, spec: PodSpec, ready_timeout: float) -> None:
        self.services, self.spec, self.label = services, spec, f"pods-{spec.label}"
        self.db = MariaDb(services.database_url)
        self.database = f"bench_pods_{spec.label.replace('-', '_')}"
        self.topics = RunTopics.for_run(f"pods-{spec.label}")
        self.ready_timeout = ready_timeout
        self.processes = {}
        self.ready_rss = {}
        self.startup_s: dict[str, float] = {}

    def __enter__(self) -> PodStack:
        wait_kafka(self.services.kafka_bootstrap)
        self.db.recreate(self.database)
        self.table = JobTable(self.db, self.database)
        self.topics.create(self.services.kafka_bootstrap, self.spec.partitions)
        url = pod_database_url(self.services.database_url, self.database)
        secret = {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": f"{self.spec.label}-db", "namespace": NAMESPACE},
            "stringData": {"url": url},
        }  # fmt: skip
        started = time.monotonic()
        kubectl("apply", "-f", "-", stdin=json.dumps(secret))
        kubectl("apply", "-f", "-", stdin=json.dumps(ocrserving(self.spec, self.topics)))
        try:
            self._wait_ready(self.spec.mode)
        except BaseException:
            self._delete()
            raise
        self.startup_s["apply -> Ready"] = round(time.monotonic() - started, 1)
        self.api_key = self._secret_value(f"{self.spec.label}-api-key", "api-key")
        service = json.loads(kubectl("get", "svc", f"{self.spec.label}-api", "-n", NAMESPACE,
                                     "-o", "json"))  # fmt: skip
        port = service["spec"]["ports"][0]["port"]
        self.api_url = f"http://{service['spec']['clusterIP']}:{port}"
        return self

    def switch(self, mode: str) -> float:
        """Patch the mode and wait until the operator reports it Ready; seconds it took."""
        started = time.monotonic()
        patch = {"spec": {"architecture": {"mode": mode}}}
        kubectl("patch", "ocrs", self.spec.label, "-n", NAMESPACE, "--type=merge",
                "-p", json.dumps(patch))  # fmt: skip
        self._wait_ready(mode)
        return round(time.monotonic() - started, 1)

    def _pods(self) -> list[dict[str, Any]]:
        out = kubectl("get", "pods", "-n", NAMESPACE, "-l",
                      f"app.kubernetes.io/instance={self.spec.label}", "-o", "json")  # fmt: skip
        return list(json.loads(out)["items"])

    def _serving_pods(self) -> list[dict[str, Any]]:
        return [pod for pod in self._pods()
                if pod["metadata"].get("labels", {}).get("app.kubernetes.io/component")
                in ("api", "worker", "writer")]  # fmt: skip

    def _settled(self, mode: str) -> bool:
        """Ready in `mode` for the current generation, and no pod of an earlier one left."""
        resource = json.loads(kubectl("get", "ocrs", self.spec.label, "-n", NAMESPACE, "-o",
                                      "json"))  # fmt: skip
        if not is_ready(resource) or (resource.get("status") or {}).get("activeMode") != mode:
            return False
        pods = self._serving_pods()
        return bool(pods) and all(
            not pod["metadata"].get("deletionTimestamp")
            and pod["spec"].get("nodeName") == NODE
            and all(c.get("ready") for c in pod["status"].get("containerStatuses", []))
            for pod in pods
        )

    def _wait_ready(self, mode: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not self._settled(mode):
            if time.monotonic() > deadline:
                pods = kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide")
                raise ProcessFailedError(
                    f"{self.spec.label} not Ready in {mode} after {self.ready_timeout:.0f} s; "
                    f"pods:\n{pods[-1500:]}"
                )
            time.sleep(1.0)

    def _secret_value(self, name: str, key: str) -> str:
        secret = json.loads(kubectl("get", "secret", name, "-n", NAMESPACE, "-o", "json"))
        return base64.b64decode(secret["data"][key]).decode()

    def measured_pids(self) -> dict[str, int]:
        """Each serving pod's processes by name (`pod api-0`, `pod worker-0`, ...), the roots
        of each container's tree (CpuWindow sums a tree), and the forwarders."""
        found = forwarder_pids()
        counts: dict[str, int] = {}
        for pod in sorted(self._serving_pods(), key=lambda p: p["metadata"]["name"]):
            part = pod["metadata"]["labels"]["app.kubernetes.io/component"]
            index = counts[part] = counts.get(part, -1) + 1
            pids = pod_processes(pod["metadata"]["uid"])
            roots = [pid for pid in pids if _parent(pid) not in pids]
            for n, pid in enumerate(sorted(roots)):
                found[f"pod {part}-{index}" + (f".{n}" if n else "")] = pid
        return found

    def _delete(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            kubectl("delete", "ocrs", self.spec.label, "-n", NAMESPACE, "--wait=true",
                    "--timeout=180s", timeout=200)  # fmt: skip
            kubectl("delete", "secret", f"{self.spec.label}-db", "-n", NAMESPACE,
                    "--ignore-not-found")  # fmt: skip

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._delete()
        with contextlib.suppress(Exception):  # cleanup must not hide the run's own error
            self.topics.delete(self.services.kafka_bootstrap)
            self.db.drop(self.database)


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def forwarder_pids() -> dict[str, int]:
    """The socat listeners through which pods reach the host's Kafka and MariaDB (an
    artefact of services bound to loopback here; a cluster's pods reach theirs directly).
    A listener forks a child per connection, so its tree holds every forwarded byte; the
    listener is the oldest of its command line."""
    wanted = {"forward kafka": "TCP-LISTEN:9092,", "forward mariadb": "TCP-LISTEN:3306,"}
    found = {name: procs.find_pids(fragment) for name, fragment in wanted.items()}
    return {name: min(pids) for name, pids in found.items() if pids}
