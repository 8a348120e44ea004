"""Fixtures of the data-plane suite: a fresh database and unique topics per test, and a
`Stack` that starts runtime processes against them and stops them all afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ocr_runtime.adapters.kafka import delete_topics, ensure_topics
from ocr_runtime.migrations import upgrade_database
from tests.dataplane.support import Database, RuntimeProcess, Topics

PARTITIONS = 4


@dataclass
class Stack:
    """One isolated data plane: its database, topics, consumer groups and processes."""

    bootstrap: str
    db: Database
    topics: Topics
    tag: str
    processes: list[RuntimeProcess] = field(default_factory=list)

    def env(self, mode: str, **extra: str) -> dict[str, str]:
        return {
            "OCR_MODE": mode,
            "OCR_ENGINE": "noop",
            "OCR_DATABASE_URL": self.db.async_url,
            "OCR_DATABASE_POOL_SIZE": "4",
            "OCR_KAFKA_BOOTSTRAP": self.bootstrap,
            "OCR_JOBS_TOPIC": self.topics.jobs,
            "OCR_RESULTS_TOPIC": self.topics.results,
            "OCR_DEAD_LETTER_TOPIC": self.topics.dead_letters,
            "OCR_CONSUMER_GROUP": f"dp-{self.tag}-workers",
            "OCR_WRITER_GROUP": f"dp-{self.tag}-writers",
            "OCR_KAFKA_CREATE_TOPICS": "false",
            "OCR_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "OCR_BATCH_MAX_SIZE": "16",
            "OCR_BATCH_MAX_WAIT_MS": "10",
            "OCR_DRAIN_SECONDS": "15",
            "OCR_RETRY_BACKOFF_MS": "50",
            "OCR_LOG_LEVEL": "INFO",
            **extra,
        }

    def launch(self, role: str, mode: str = "batched", **extra: str) -> RuntimeProcess:
        """Start a process without waiting for it to be ready."""
        name = f"{self.tag}-{role}-{len(self.processes)}"
        process = RuntimeProcess(role, self.env(mode, **extra), name).start()
        self.processes.append(process)
        return process

    def start(self, role: str, mode: str = "batched", **extra: str) -> RuntimeProcess:
        """Start a process and wait until it is ready."""
        return self.launch(role, mode, **extra).wait_ready()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def stack(kafka_bootstrap: str, mysql_url: str) -> Iterator[Stack]:
    db = Database.create(mysql_url)
    upgrade_database(db.async_url)
    topics = Topics.unique()
    names = [topics.jobs, topics.results, topics.dead_letters]
    asyncio.run(ensure_topics(kafka_bootstrap, names, partitions=PARTITIONS))
    built = Stack(kafka_bootstrap, db, topics, uuid.uuid4().hex[:8])
    try:
        yield built
    finally:
        built.stop_all()
        asyncio.run(delete_topics(kafka_bootstrap, names))
        db.drop()
