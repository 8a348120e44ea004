"""Failure isolation and graceful shutdown: a poison message goes to the dead-letter topic
while the other jobs of its batch succeed; SIGTERM under load finishes the in-flight batch,
commits and exits 0, and nothing is processed twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from tests.dataplane.conftest import Stack
from tests.dataplane.support import (
    Load,
    assert_exactly_one_result_each,
    metric_value,
    produce_raw,
    read_topic,
    submit_jobs,
    wait_until,
)

pytestmark = pytest.mark.integration

POISON = [b"\xff\xfe not json", b"{}", b'{"job_id": "x", "width": "wide"}']


def test_poison_goes_to_dead_letters_and_its_batch_neighbours_succeed(stack: Stack) -> None:
    api = stack.start("api", "batched")
    first = asyncio.run(submit_jobs(api.url, 40))
    asyncio.run(produce_raw(stack.bootstrap, stack.topics.jobs, POISON))
    second = asyncio.run(submit_jobs(api.url, 40))
    # Everything is queued before the worker starts, so poison shares batches with jobs.
    worker = stack.start("worker", "batched", OCR_BATCH_MAX_WAIT_MS="200")
    ids = first + second
    stack.db.wait_all_done(ids)
    assert_exactly_one_result_each(stack.db, ids)

    letters = asyncio.run(read_topic(stack.bootstrap, stack.topics.dead_letters))
    assert sorted(value for _, value, _ in letters) == sorted(POISON)
    for _, _, headers in letters:
        assert headers["ocr-reason"] == b"poison"
        assert headers["ocr-stage"] == b"worker"
        assert headers["ocr-source-topic"] == stack.topics.jobs.encode()
    metrics = worker.metrics()
    assert metric_value(metrics, "ocr_jobs_dead_lettered_total", {"reason": "poison"}) == 3
    # The poison shared a batch with real jobs (batches of up to 16 from a full backlog).
    assert metric_value(metrics, "ocr_batch_size_count") < len(ids)


@pytest.mark.parametrize("mode", ["batched", "writer"])
def test_sigterm_under_load_drains_without_duplicates(stack: Stack, mode: str) -> None:
    api = stack.launch("api", mode)
    worker = stack.launch("worker", mode)
    writer = stack.launch("writer", mode) if mode == "writer" else None
    for process in (api, worker, writer):
        if process is not None:
            process.wait_ready()
    load = Load(api.url, 300).start()
    wait_until(lambda: metric_value(worker.metrics(), "ocr_jobs_consumed_total") >= 40, 60,
               "the worker busy")  # fmt: skip
    assert worker.terminate() == 0, worker.tail()
    assert "stopped cleanly" in worker.tail(200)
    ids = load.join()
    successor = stack.start("worker", mode)
    stack.db.wait_all_done(ids)
    assert_exactly_one_result_each(stack.db, ids)
    assert metric_value(successor.metrics(), "ocr_jobs_consumed_total") > 0
    if mode == "writer":
        assert writer is not None
        assert writer.terminate() == 0, writer.tail()
        # Each job's result was published exactly once: no batch was redone.
        results = asyncio.run(read_topic(stack.bootstrap, stack.topics.results))
        per_job = Counter(json.loads(value)["job_id"] for _, value, _ in results)
        assert set(per_job) == set(ids)
        assert set(per_job.values()) == {1}
    else:
        # Each job was started exactly once: the drained batch was not redelivered.
        assert {row.attempts for row in stack.db.rows().values()} == {1}
