"""Systems under test, each brought up from nothing on a fresh database and fresh topics:
our runtime (`ocr-runtime api|worker|writer` subprocesses), the Celery baseline and the Ray
Serve baseline."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from benchmarks import procs
from benchmarks.jobs_db import JobTable
from benchmarks.procs import ManagedProcess, ProcessFailedError
from benchmarks.services import MariaDb, RunTopics, Services, wait_kafka

# Variables of the caller's environment that must not reach the processes under test.
_DROPPED = ("OCR_REDIS_URL",)


@dataclass(frozen=True)
class StackSpec:
    """One configuration of our runtime. Redis stays off (it is optional, and duplicate
    suppression would fold repeated uploads into one job)."""

    label: str
    mode: str  # standard | batched | writer
    engine: str  # onnx | noop
    batch_max_size: int = 8
    batch_max_wait_ms: int = 20
    workers: int = 1
    writers: int = 1
    partitions: int = 2
    log_level: str = "WARNING"
    extra_env: dict[str, str] = field(default_factory=dict)
    # API processes, each on its own port; the load generator spreads requests over them
    # as a Service spreads them over API pods.
    api_processes: int = 1

    def settings(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "engine": self.engine,
            "batch_max_size": self.batch_max_size,
            "batch_max_wait_ms": self.batch_max_wait_ms,
            "workers": self.workers,
            "writers": self.writers if self.mode == "writer" else 0,
            "partitions": self.partitions,
            "log_level": self.log_level,
            "api_processes": self.api_processes,
            **self.extra_env,
        }


def api_name(index: int) -> str:
    """The name of API process `index`: `api`, then `api-1`, `api-2`..."""
    return "api" if index == 0 else f"api-{index}"


def _base_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _DROPPED}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class System:
    """What every system under test offers the suites."""

    label: str
    api_url: str
    table: JobTable
    processes: dict[str, ManagedProcess]
    ready_rss: dict[str, int]
    # sent as a bearer token when the system's API is authenticated
    api_key: str | None = None

    def cutoff(self) -> datetime:
        """Rows created after this moment belong to the measurement, not the warm-up."""
        return datetime.now(UTC).replace(tzinfo=None)

    def python_pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes.items()}

    def measured_pids(self) -> dict[str, int]:
        """The processes whose CPU a pass attributes to this system, by name."""
        return self.python_pids()

    @property
    def api_urls(self) -> list[str]:
        """Every API process's base URL (one unless the system runs several)."""
        return [self.api_url]

    @property
    def jobs_url(self) -> str:
        """The submission URL of every API process, as the load generator's `--url` takes
        them (comma-separated; request i goes to process i modulo their number)."""
        return ",".join(f"{url}/v1/jobs" for url in self.api_urls)

    def stop_all(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()

    def __enter__(self) -> Self:
        raise NotImplementedError

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError

    def check_alive(self) -> None:
        for proc in self.processes.values():
            if not proc.alive():
                raise ProcessFailedError(
                    f"{proc.name} died ({proc.popen.returncode}):\n{proc.log_tail()}"
                )


class RuntimeStack(System):
    def __init__(self, services: Services, spec: StackSpec, log_dir: Path) -> None:
        self.services, self.spec, self.label = services, spec, spec.label
        self.log_dir = log_dir / spec.label
        self.db = MariaDb(services.database_url)
        self.database = f"bench_{spec.label.replace('-', '_')}"
        self.topics = RunTopics.for_run(spec.label)
        self.processes = {}
        self.ready_rss = {}
        self.startup_s: dict[str, float] = {}
        self._api_urls: list[str] = []

    @property
    def api_urls(self) -> list[str]:
        return self._api_urls

    def _env(self, database_url: str, port: int) -> dict[str, str]:
        env = _base_env()
        env.update(self.topics.env())
        env.update(
            {
                "OCR_DATABASE_URL": database_url,
                "OCR_KAFKA_BOOTSTRAP": self.services.kafka_bootstrap,
                "OCR_MODE": self.spec.mode,
                "OCR_ENGINE": self.spec.engine,
                "OCR_BATCH_MAX_SIZE": str(self.spec.batch_max_size),
                "OCR_BATCH_MAX_WAIT_MS": str(self.spec.batch_max_wait_ms),
                "OCR_HTTP_HOST": "127.0.0.1",
                "OCR_HTTP_PORT": str(port),
                "OCR_LOG_LEVEL": self.spec.log_level,
            }
        )
        env.update(self.spec.extra_env)
        return env

    def _launch(self, name: str, role: str, database_url: str) -> tuple[ManagedProcess, str]:
        port = procs.free_port()
        proc = procs.start(
            name, [procs.venv_bin("ocr-runtime"), role], self._env(database_url, port), self.log_dir
        )
        self.processes[name] = proc
        return proc, f"http://127.0.0.1:{port}"

    def _migrate(self, database_url: str) -> None:
        proc = procs.start(
            "migrate",
            [procs.venv_bin("ocr-runtime"), "migrate"],
            self._env(database_url, procs.free_port()),
            self.log_dir,
        )
        if proc.popen.wait(120) != 0:
            raise ProcessFailedError(f"ocr-runtime migrate failed:\n{proc.log_tail()}")

    def __enter__(self) -> RuntimeStack:
        wait_kafka(self.services.kafka_bootstrap)
        database_url = self.db.recreate(self.database)
        self.table = JobTable(self.db, self.database)
        self._migrate(database_url)
        self.topics.create(self.services.kafka_bootstrap, self.spec.partitions)
        try:
            self._start_processes(database_url)
        except BaseException:
            self.stop_all()
            raise
        return self

    def _start_processes(self, database_url: str) -> None:
        apis = [self._launch(api_name(i), "api", database_url)
                for i in range(self.spec.api_processes)]  # fmt: skip
        self._api_urls = [url for _, url in apis]
        self.api_url = self._api_urls[0]
        roles = [(f"worker-{i}", "worker") for i in range(self.spec.workers)]
        if self.spec.mode == "writer":
            roles += [(f"writer-{i}", "writer") for i in range(self.spec.writers)]
        pending = [*apis, *(self._launch(name, role, database_url) for name, role in roles)]
        for proc, url in pending:
            self.startup_s[proc.name] = round(procs.wait_http_ready(f"{url}/readyz", proc), 2)
        # resident size once ready and idle: the worker's figure with its model loaded
        self.ready_rss = {name: proc.sample_rss() for name, proc in self.processes.items()}

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
        with contextlib.suppress(Exception):  # cleanup must not hide the run's own error
            self.topics.delete(self.services.kafka_bootstrap)
            self.db.drop(self.database)
        blob_dir = self.spec.extra_env.get("OCR_BLOB_DIR")
        if blob_dir:
            shutil.rmtree(blob_dir, ignore_errors=True)


class CeleryStack(System):
    """Seed 003's design: FastAPI -> Celery on Redis -> result in MariaDB."""

    def __init__(
        self, services: Services, log_dir: Path, label: str = "celery", *, api_processes: int = 1
    ) -> None:
        """`api_processes`: uvicorn workers of the FastAPI front (one port, as uvicorn's
        `--workers` shares its socket)."""
        self.services, self.label = services, label
        self.api_processes = api_processes
        self.log_dir = log_dir / label
        self.db = MariaDb(services.database_url)
        self.database = "bench_celery"
        self.processes = {}
        self.ready_rss = {}
        self.startup_s: dict[str, float] = {}
        self.redis_db = 5

    def _env(self, database_url: str) -> dict[str, str]:
        env = _base_env()
        redis = self.services.redis_url.rstrip("/").rsplit("/", 1)
        base = redis[0] if redis[-1].isdigit() else self.services.redis_url.rstrip("/")
        env.update(
            {"BASELINE_DATABASE_URL": database_url, "BASELINE_REDIS_URL": f"{base}/{self.redis_db}"}
        )
        return env

    def __enter__(self) -> CeleryStack:
        database_url = self.db.recreate(self.database)
        env = self._env(database_url)
        # a stale queue from an interrupted run would be counted as this run's work
        redis.Redis.from_url(env["BASELINE_REDIS_URL"]).flushdb()
        port = procs.free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        api = procs.start(
            "api",
            [
                procs.venv_bin("uvicorn"),
                "benchmarks.celery_baseline.app:api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--workers",
                str(self.api_processes),
            ],
            env,
            self.log_dir,
        )
        self.processes["api"] = api
        worker = procs.start(
            "worker",
            [
                procs.venv_bin("celery"),
                "-A",
                "benchmarks.celery_baseline.app:celery_app",
                "worker",
                "--loglevel",
                "WARNING",
            ],
            env,
            self.log_dir,
        )
        self.processes["worker"] = worker
        try:
            started = time.monotonic()
            procs.wait_http_ready(f"{self.api_url}/readyz", api)
            self.startup_s["api"] = round(time.monotonic() - started, 2)
        except BaseException:
            self.stop_all()
            raise
        self.table = JobTable(self.db, self.database, table="jobs")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
        with contextlib.suppress(Exception):  # cleanup must not hide the run's own error
            self.db.drop(self.database)


class RayServeStack(System):
    """Ray Serve with `@serve.batch` on one local node (`benchmarks.ray_baseline.app`): one
    process that starts Ray's own (GCS, raylet, workers, HTTP proxy) as its descendants, so
    their CPU is counted under `ray` and none of them may outlive `__exit__`."""

    def __init__(
        self,
        services: Services,
        log_dir: Path,
        *,
        label: str,
        engine: str,
        max_batch_size: int,
        batch_wait_s: float,
        ingress_replicas: int = 1,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.services, self.label = services, label
        self.ingress_replicas = ingress_replicas
        self.log_dir = log_dir / label
        self.db = MariaDb(services.database_url)
        self.database = f"bench_{label.replace('-', '_')}"
        self.engine, self.max_batch_size, self.batch_wait_s = engine, max_batch_size, batch_wait_s
        self.extra_env = extra_env or {}
        self.processes = {}
        self.ready_rss = {}
        self.startup_s: dict[str, float] = {}
        self.leftover: list[int] = []  # Ray processes still alive after the stop (killed)

    def settings(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "max_batch_size": self.max_batch_size,
            "batch_wait_timeout_s": self.batch_wait_s,
            "model max_ongoing_requests": 2 * self.max_batch_size,
            "ingress replicas": self.ingress_replicas,
            **self.extra_env,
        }

    def _env(self, database_url: str) -> dict[str, str]:
        env = _base_env()
        env.update(
            {
                "BASELINE_DATABASE_URL": database_url,
                "OCR_ENGINE": self.engine,
                "OCR_LOG_LEVEL": "WARNING",
                "RAY_USAGE_STATS_ENABLED": "0",
                # On two cores shared with other tenants the raylet's heartbeats lag by
                # seconds, and Ray's defaults then mark the only node dead before Serve is up.
                "RAY_health_check_period_ms": "5000",
                "RAY_health_check_timeout_ms": "30000",
                "RAY_health_check_failure_threshold": "20",
                # Serve kills an HTTP proxy not ready within 5 s, and serve.start() then fails
                # with ActorDiedError: on two cores busy compiling, the proxy's start took
                # longer. Startup only; nothing measured waits on it.
                "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
                # Ray's workers import the deployments by module name
                "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")])),
            }
        )
        env.update(self.extra_env)
        return env

    def __enter__(self) -> RayServeStack:
        database_url = self.db.recreate(self.database)
        port = procs.free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable,
            "-m",
            "benchmarks.ray_baseline.app",
            "--port",
            str(port),
            "--max-batch-size",
            str(self.max_batch_size),
            "--batch-wait-s",
            str(self.batch_wait_s),
            "--ingress-replicas",
            str(self.ingress_replicas),
        ]
        self.processes["ray"] = procs.start("ray", argv, self._env(database_url), self.log_dir)
        try:
            started = time.monotonic()
            procs.wait_http_ready(f"{self.api_url}/readyz", self.processes["ray"], timeout=300.0)
            self.startup_s["ray"] = round(time.monotonic() - started, 2)
            self.ready_rss = {name: proc.sample_rss() for name, proc in self.processes.items()}
        except BaseException:
            self._stop()
            raise
        self.table = JobTable(self.db, self.database, table="jobs")
        return self

    def _stop(self) -> None:
        tree = procs.process_tree(self.processes["ray"].pid)
        self.processes["ray"].stop(timeout=60.0)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and any(procs.alive(pid) for pid in tree):
            time.sleep(0.2)
        self.leftover = [pid for pid in tree if procs.alive(pid)]
        for pid in self.leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()
        with contextlib.suppress(Exception):  # cleanup must not hide the run's own error
            self.db.drop(self.database)
