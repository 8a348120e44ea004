"""The real services a run uses (from `.local/env`): a fresh database and fresh topics per run,
so no run sees another's rows or backlog."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pymysql
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from sqlalchemy.engine import URL, make_url

_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class ServiceMissingError(RuntimeError):
    """A service the benchmark needs is not configured or not reachable."""


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    database_url: str  # mysql+aiomysql://... as in .local/env
    redis_url: str
    prometheus_url: str
    kubeconfig: str

    @classmethod
    def from_env(cls) -> Services:
        missing = [
            name
            for name in ("OCR_KAFKA_BOOTSTRAP", "OCR_DATABASE_URL", "OCR_REDIS_URL")
            if not os.environ.get(name)
        ]
        if missing:
            raise ServiceMissingError(
                f"{', '.join(missing)} unset: start the services with `make infra-up` and "
                "source .local/env (or run `make bench`)"
            )
        return cls(
            kafka_bootstrap=os.environ["OCR_KAFKA_BOOTSTRAP"],
            database_url=os.environ["OCR_DATABASE_URL"],
            redis_url=os.environ["OCR_REDIS_URL"],
            prometheus_url=os.environ.get("PROMETHEUS_URL", ""),
            kubeconfig=os.environ.get("KUBECONFIG", ""),
        )


def wait_kafka(bootstrap: str, timeout: float = 120.0) -> None:
    """Wait until the first bootstrap address accepts connections (another session's chaos
    test may be restarting the shared broker)."""
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
                return
        except OSError:
            time.sleep(1.0)
    raise ServiceMissingError(f"Kafka at {bootstrap} not reachable for {timeout:.0f}s")


class MariaDb:
    """Admin and read-only queries over the server named by OCR_DATABASE_URL."""

    def __init__(self, database_url: str) -> None:
        self.url: URL = make_url(database_url)

    def _connect(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.url.host or "127.0.0.1",
            port=self.url.port or 3306,
            user=self.url.username or "",
            password=self.url.password or "",
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def url_for(self, database: str, driver: str = "mysql+aiomysql") -> str:
        return self.url.set(drivername=driver, database=database).render_as_string(
            hide_password=False
        )

    def recreate(self, database: str) -> str:
        if not _NAME.match(database):
            raise ValueError(f"bad database name {database!r}")
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        return self.url_for(database)

    def drop(self, database: str) -> None:
        if not _NAME.match(database):
            raise ValueError(f"bad database name {database!r}")
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")

    @contextmanager
    def cursor(self, database: str) -> Iterator[pymysql.cursors.Cursor]:
        with self._connect(database) as conn, conn.cursor() as cur:
            yield cur


async def _create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(topics)
    finally:
        await admin.close()


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@dataclass(frozen=True)
class RunTopics:
    jobs: str
    results: str
    dead_letter: str
    consumer_group: str
    writer_group: str

    @classmethod
    def for_run(cls, tag: str) -> RunTopics:
        stamp = f"{tag}-{int(time.time() * 1000) % 10**9}"
        return cls(
            jobs=f"bench-{stamp}-jobs",
            results=f"bench-{stamp}-results",
            dead_letter=f"bench-{stamp}-dlq",
            consumer_group=f"bench-{stamp}-workers",
            writer_group=f"bench-{stamp}-writers",
        )

    def names(self) -> list[str]:
        return [self.jobs, self.results, self.dead_letter]

    def env(self) -> dict[str, str]:
        return {
            "OCR_JOBS_TOPIC": self.jobs,
            "OCR_RESULTS_TOPIC": self.results,
            "OCR_DEAD_LETTER_TOPIC": self.dead_letter,
            "OCR_CONSUMER_GROUP": self.consumer_group,
            "OCR_WRITER_GROUP": self.writer_group,
        }

    def create(self, bootstrap: str, partitions: int) -> None:
        asyncio.run(_create_topics(bootstrap, self.names(), partitions))

    def delete(self, bootstrap: str) -> None:
        asyncio.run(_delete_topics(bootstrap, self.names()))
