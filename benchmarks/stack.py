"""Systems under test, each brought up from nothing on a fresh database and fresh topics:
what they all offer the suites (`System`), and our runtime (`ocr-runtime api|worker|writer`
subprocesses). The baselines are in `benchmarks/baselines.py`."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

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


def base_env() -> dict[str, str]:
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
        env = base_env()
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
