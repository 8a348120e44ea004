"""The baselines our stacks are compared with, as systems under test: Celery on Redis (seed
003's design) and Ray Serve's `@serve.batch`, each brought up from nothing on a fresh
database."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import TracebackType

import redis

from benchmarks import procs
from benchmarks.jobs_db import JobTable
from benchmarks.services import MariaDb, Services
from benchmarks.stack import System, base_env


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
        env = base_env()
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
        env = base_env()
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
