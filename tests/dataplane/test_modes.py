"""Each architecture end to end through the HTTP API, on real Kafka and MariaDB, with the
runtime's processes started as `uv run --frozen ocr-runtime <role>`."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from PIL import Image

from tests.dataplane.conftest import Stack
from tests.dataplane.support import (
    RuntimeProcess,
    assert_exactly_one_result_each,
    metric_value,
    read_topic,
    submit_jobs,
)
from tests.support.documents import render_document

pytestmark = pytest.mark.integration

JOBS = 300


def start_plane(stack: Stack, mode: str, **extra: str) -> dict[str, RuntimeProcess]:
    """API, worker and, in writer mode, writer; started together, then awaited."""
    roles = ["api", "worker"] + (["writer"] if mode == "writer" else [])
    started = {role: stack.launch(role, mode, **extra) for role in roles}
    for process in started.values():
        process.wait_ready()
    return started


@pytest.mark.parametrize("mode", ["standard", "batched", "writer"])
def test_mode_processes_jobs_end_to_end(stack: Stack, mode: str) -> None:
    plane = start_plane(stack, mode)
    ids = asyncio.run(submit_jobs(plane["api"].url, JOBS))
    assert len(ids) == JOBS
    stack.db.wait_all_done(ids)
    assert_exactly_one_result_each(stack.db, ids)

    with httpx.Client(base_url=plane["api"].url) as client:
        for job_id in ids[:5]:
            body = client.get(f"/v1/jobs/{job_id}").json()
            assert body["status"] == "succeeded"
            assert body["result"] is not None

    worker = plane["worker"].metrics()
    batches = metric_value(worker, "ocr_batch_size_count")
    assert metric_value(worker, "ocr_jobs_consumed_total") >= JOBS
    assert metric_value(worker, "ocr_jobs_succeeded_total") >= JOBS
    rows = stack.db.rows()
    if mode == "standard":
        assert batches == metric_value(worker, "ocr_batch_size_sum")  # one job per batch
    else:
        assert batches < JOBS  # jobs shared batches
    # Every mode claims each job once in the database (writer mode included: attempts must
    # outlive a worker that a job kills); in writer mode the writer records every result.
    assert {r.attempts for r in rows.values()} == {1}
    if mode == "writer":
        written = metric_value(plane["writer"].metrics(), "ocr_results_written_total")
        assert written == JOBS
    dead = asyncio.run(read_topic(stack.bootstrap, stack.topics.dead_letters, timeout_s=1.0))
    assert dead == []


def test_onnx_engine_small_batched_run(stack: Stack) -> None:
    """A few real documents through the batched mode on the default ONNX engine."""
    plane = start_plane(stack, "batched", OCR_ENGINE="onnx", OCR_BATCH_MAX_WAIT_MS="200")
    lines = [("invoice total amount", "payment due date"), ("customer order number",),
             ("Seoul branch office", "monthly statement")]  # fmt: skip
    ids: list[str] = []
    with httpx.Client(base_url=plane["api"].url, timeout=30.0) as client:
        for doc_lines in lines:
            buffer = io.BytesIO()
            Image.fromarray(render_document(doc_lines).image).save(buffer, format="PNG")
            files = {"image": ("doc.png", buffer.getvalue(), "image/png")}
            response = client.post("/v1/jobs", files=files)
            assert response.status_code == 202, response.text
            ids.append(response.json()["job_id"])
        stack.db.wait_all_done(ids, timeout=180.0)
        assert_exactly_one_result_each(stack.db, ids)
        for job_id, doc_lines in zip(ids, lines, strict=True):
            text = client.get(f"/v1/jobs/{job_id}").json()["result"]["text"]
            found = [line for line in doc_lines if line.lower() in text.lower()]
            assert found, f"none of {doc_lines} in {text!r}"


@pytest.mark.parametrize(
    ("target_ms", "grows"),
    [(5000, True), (1, False)],
    ids=["target-above-the-batch-cost", "target-below-any-batch"],
)
def test_batched_worker_tunes_its_batch_size_within_the_latency_target(
    stack: Stack, target_ms: int, grows: bool
) -> None:
    """A backlog fills every batch: under a generous target the size limit climbs from 1; a
    target no batch can meet (a database write alone takes longer) keeps it at 1."""
    api = stack.start("api", "batched")
    ids = asyncio.run(submit_jobs(api.url, JOBS))
    worker = stack.start("worker", "batched", OCR_BATCH_LATENCY_TARGET_MS=str(target_ms))
    stack.db.wait_all_done(ids)
    assert_exactly_one_result_each(stack.db, ids)

    metrics = worker.metrics()
    limit = metric_value(metrics, "ocr_batch_size_limit")
    increases = metric_value(metrics, "ocr_batch_tuning_steps_total", {"step": "increase"})
    decreases = metric_value(metrics, "ocr_batch_tuning_steps_total", {"step": "decrease"})
    batches = metric_value(metrics, "ocr_batch_size_count")
    if grows:
        assert increases >= 3 and decreases == 0
        assert limit == 1 + increases
        assert batches < JOBS  # jobs shared batches
    else:
        assert decreases >= 1 and increases == 0
        assert limit == 1
        assert batches == JOBS  # one job per batch, as the target demands
