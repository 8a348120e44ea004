"""Session fixtures for the real local services started by `scripts/infra/`.

Each fixture reads the service's address from `.local/env` (written by `make infra-up` /
`make cluster-up`), checks that the service answers, starts it through the script when it
does not, and fails the test with the reason when it still cannot be reached. Nothing here
skips: a test that needs a service and cannot get it is a failed test.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
ENV_FILE = LOCAL_DIR / "env"
INFRA_SCRIPT = REPO_ROOT / "scripts" / "infra" / "infra.sh"
CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "infra" / "cluster.sh"
MLFLOW_SCRIPT = REPO_ROOT / "scripts" / "infra" / "mlflow.sh"
S3_SCRIPT = REPO_ROOT / "scripts" / "infra" / "s3.sh"
DEFAULT_TARGETS_FILE = LOCAL_DIR / "prometheus" / "targets.json"

# Cold starts install packages (infra) or compile Kubernetes (cluster, 15-30 min).
INFRA_START_TIMEOUT_S = 600.0
CLUSTER_START_TIMEOUT_S = 2400.0
TARGETS_UP_TIMEOUT_S = 30.0

TargetsSetter = Callable[..., None]


def read_local_env(path: Path = ENV_FILE) -> dict[str, str]:
    """Parses the `export KEY=value` lines of `.local/env` (missing file: empty)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line.startswith("export ") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass
class _Starter:
    """Runs an infra script at most once per session and remembers how it went."""

    script: Path
    timeout_s: float
    outcome: str | None = None

    def start(self) -> str:
        if self.outcome is None:
            self.outcome = self._run()
        return self.outcome

    def _run(self) -> str:
        try:
            done = subprocess.run(
                [str(self.script), "up"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"`{self.script.name} up` did not finish within {self.timeout_s:.0f} s"
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        return f"`{self.script.name} up` exited {done.returncode}:\n{tail}"


_INFRA = _Starter(INFRA_SCRIPT, INFRA_START_TIMEOUT_S)
_CLUSTER = _Starter(CLUSTER_SCRIPT, CLUSTER_START_TIMEOUT_S)
_MLFLOW = _Starter(MLFLOW_SCRIPT, INFRA_START_TIMEOUT_S)
_S3 = _Starter(S3_SCRIPT, INFRA_START_TIMEOUT_S)


def _tcp_open(host: str, port: int) -> str | None:
    """None when a TCP connection succeeds, the error text otherwise."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc}"


def _http_ok(url: str, token: str | None = None) -> str | None:
    """None when GET url answers 2xx, the error text otherwise (TLS not verified)."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=3.0, context=context) as response:
            return None if 200 <= response.status < 300 else f"{url}: HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def _service_value(key: str, probe: Callable[[str], str | None], starter: _Starter) -> str:
    """The `.local/env` value of key once probe(value) passes, starting the service if needed."""
    value = read_local_env().get(key)
    problem = probe(value) if value else f"{key} missing from {ENV_FILE}"
    if problem is None and value:
        return value
    outcome = starter.start()
    value = read_local_env().get(key)
    problem = probe(value) if value else f"{key} missing from {ENV_FILE}"
    if problem is None and value:
        return value
    pytest.fail(f"service for {key} unreachable: {problem}\nstart attempt: {outcome}")


def _probe_host_port(value: str) -> str | None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        return f"cannot parse host:port from {value!r}"
    return _tcp_open(host, int(port))


def _probe_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.hostname is None or parts.port is None:
        return f"cannot parse host and port from {value!r}"
    return _tcp_open(parts.hostname, parts.port)


def _probe_prometheus(value: str) -> str | None:
    return _http_ok(value.rstrip("/") + "/-/ready")


def kubeconfig_server_and_token(path: Path) -> tuple[str, str]:
    """The API server URL and bearer token of the current context of a kubeconfig."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    return str(cluster["server"]), str(user["token"])


def _probe_kubeconfig(value: str) -> str | None:
    path = Path(value)
    if not path.is_file():
        return f"{path} does not exist"
    try:
        server, token = kubeconfig_server_and_token(path)
    except (KeyError, StopIteration, yaml.YAMLError) as exc:
        return f"{path} is not a token kubeconfig: {exc!r}"
    return _http_ok(server + "/readyz", token)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Kafka bootstrap servers, `127.0.0.1:19092`."""
    return _service_value("OCR_KAFKA_BOOTSTRAP", _probe_host_port, _INFRA)


@dataclass(frozen=True)
class SecureKafka:
    """The local broker's SASL_SSL listener (SCRAM-SHA-512) and what a client needs for it."""

    bootstrap: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    username: str
    password: str


@pytest.fixture(scope="session")
def kafka_secure() -> SecureKafka:
    """`127.0.0.1:19095`, its CA, a client certificate and the SCRAM test user."""
    bootstrap = _service_value("KAFKA_SECURE_BOOTSTRAP", _probe_host_port, _INFRA)
    env = read_local_env()
    return SecureKafka(
        bootstrap=bootstrap,
        ca_file=Path(env["KAFKA_SECURE_CA_FILE"]),
        cert_file=Path(env["KAFKA_SECURE_CLIENT_CERT_FILE"]),
        key_file=Path(env["KAFKA_SECURE_CLIENT_KEY_FILE"]),
        username=env["KAFKA_SECURE_USERNAME"],
        password=env["KAFKA_SECURE_PASSWORD"],
    )


@pytest.fixture(scope="session")
def kafka_secure_for_pods(kafka_secure: SecureKafka) -> str:
    """`kafka.kafka.svc:9093`: the broker's SASL_SSL listener for the real node's pods
    (127.0.0.1:19096 on the host, behind node.sh's forwarder), with kafka_secure's CA and
    user. A broker started before that listener existed fails here with `infra.sh up`'s
    word on how to add it."""
    _service_value("KAFKA_SECURE_POD_LISTENER", _probe_host_port, _INFRA)
    return read_local_env()["KAFKA_SECURE_POD_BOOTSTRAP"]


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """SQLAlchemy async URL of the MariaDB `ocr` database (user `ocr` may create databases)."""
    return _service_value("OCR_DATABASE_URL", _probe_url, _INFRA)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """`redis://127.0.0.1:16379/0`."""
    return _service_value("OCR_REDIS_URL", _probe_url, _INFRA)


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """Prometheus base URL, `http://127.0.0.1:19090` (1 s scrape interval)."""
    return _service_value("PROMETHEUS_URL", _probe_prometheus, _INFRA)


@pytest.fixture(scope="session")
def mlflow_url() -> str:
    """MLflow tracking server with its model registry, `http://127.0.0.1:15000`."""
    return _service_value(
        "MLFLOW_TRACKING_URI", lambda url: _http_ok(url.rstrip("/") + "/health"), _MLFLOW
    )


@dataclass(frozen=True)
class S3Server:
    """The local S3 API (S3Proxy, AWS Signature V4 only), its key pair and a bucket."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    bucket: str


S3_KEYS = ("OCR_TEST_S3_ACCESS_KEY_ID", "OCR_TEST_S3_SECRET_ACCESS_KEY", "OCR_TEST_S3_BUCKET")


def s3_server(endpoint: str, env: Mapping[str, str]) -> S3Server:
    """The server at `endpoint` with the key pair and bucket of `env` (`.local/env`); fails
    the test naming the variables `s3.sh up` did not write."""
    missing = [key for key in S3_KEYS if not env.get(key)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing from {ENV_FILE}: run `{S3_SCRIPT} up`")
    return S3Server(
        endpoint=endpoint,
        access_key_id=env["OCR_TEST_S3_ACCESS_KEY_ID"],
        secret_access_key=env["OCR_TEST_S3_SECRET_ACCESS_KEY"],
        bucket=env["OCR_TEST_S3_BUCKET"],
    )


@pytest.fixture(scope="session")
def s3() -> S3Server:
    """`http://127.0.0.1:15900`, the key pair `s3.sh` generated and the bucket it made."""
    endpoint = _service_value("OCR_TEST_S3_ENDPOINT", _probe_url, _S3)
    return s3_server(endpoint, read_local_env())


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """Path of the local cluster's admin kubeconfig; also exported as KUBECONFIG for the
    session so clients that read the environment (kopf, kubectl) reach the same cluster."""
    path = Path(_service_value("KUBECONFIG", _probe_kubeconfig, _CLUSTER))
    os.environ["KUBECONFIG"] = str(path)
    return path


def _targets_file() -> Path:
    return Path(read_local_env().get("PROMETHEUS_TARGETS_FILE", str(DEFAULT_TARGETS_FILE)))


def _write_targets(path: Path, groups: list[dict[str, object]]) -> None:
    # Atomic replace: Prometheus must never read a half-written file.
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(groups, indent=2), encoding="utf-8")
    tmp.replace(path)


def _active_targets(prometheus_url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(
        prometheus_url.rstrip("/") + "/api/v1/targets?state=active", timeout=3.0
    ) as response:
        body = json.load(response)
    return list(body["data"]["activeTargets"])


def _targets_state(prometheus_url: str, wanted: set[str]) -> tuple[bool, str]:
    """(whether Prometheus scrapes exactly `wanted` and all are up, a description)."""
    active = _active_targets(prometheus_url)
    health: dict[str, str] = {}
    for target in active:
        labels = target.get("discoveredLabels")
        if isinstance(labels, dict):
            address = str(labels.get("__address__", ""))
            health[address] = f"{target.get('health')} {target.get('lastError') or ''}".strip()
    done = set(health) == wanted and all(h == "up" for h in health.values())
    return done, json.dumps(health)


@pytest.fixture
def prometheus_targets(prometheus_url: str) -> Iterator[TargetsSetter]:
    """A callable `set_targets(targets, labels=None, timeout=30.0)` that rewrites the scrape
    target list (`host:port` entries, scraped at `/metrics` unless labels set
    `__metrics_path__`) and waits until Prometheus scrapes exactly those and sees them up.
    The list is emptied again after the test. The file is one per machine and `make test`
    runs two pytest processes at once, so the fixture holds an exclusive lock on it from
    setup to teardown: a second test that scrapes waits for the first to end."""
    path = _targets_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _targets_setter(prometheus_url, path)


def _targets_setter(prometheus_url: str, path: Path) -> Iterator[TargetsSetter]:
    def set_targets(
        targets: Sequence[str],
        labels: Mapping[str, str] | None = None,
        timeout: float = TARGETS_UP_TIMEOUT_S,
    ) -> None:
        wanted = {str(t) for t in targets}
        groups: list[dict[str, object]] = []
        if wanted:
            groups.append({"targets": sorted(wanted), "labels": dict(labels or {})})
        _write_targets(path, groups)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            try:
                done, state = _targets_state(prometheus_url, wanted)
            except OSError as error:
                # One slow answer on a loaded machine is one poll lost, not the wait: the
                # deadline still bounds it, and the last error is what the failure reports.
                done, state = False, f"reading {prometheus_url}: {error!r}"
            if done:
                return
            time.sleep(0.25)
        pytest.fail(f"Prometheus did not scrape {sorted(wanted)} as up within {timeout} s: {state}")

    yield set_targets
    _write_targets(path, [])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `cluster` every test that reaches the local Kubernetes cluster (the kubeconfig
    fixture is in its closure), so that `make test` can run the others while the cluster's
    binaries still compile on a fresh machine."""
    for item in items:
        if "kubeconfig" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
