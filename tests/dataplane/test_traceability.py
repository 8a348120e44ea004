"""The request id travels with the job: the API puts the X-Request-ID of the submission in a
Kafka header, and every worker and writer log line about the job carries that `request_id`
beside its `job_id` (dead letters keep the header too)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.dataplane.conftest import Stack
from tests.dataplane.faults import ERROR_MARKER, refuse_success_of, seeded_png
from tests.dataplane.support import RuntimeProcess, read_topic

pytestmark = pytest.mark.integration

ENGINE = {"OCR_ENGINE": "synthetic", "OCR_MAX_ATTEMPTS": "2"}


def submit(api_url: str, image: bytes) -> tuple[str, str]:
    with httpx.Client(base_url=api_url, timeout=30.0) as client:
        response = client.post("/v1/jobs", files={"image": ("p.png", image, "image/png")})
    assert response.status_code == 202, response.text
    return response.json()["job_id"], response.headers["X-Request-ID"]


def lines_about(process: RuntimeProcess, job_id: str) -> list[dict[str, object]]:
    found = []
    for raw in process.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("job_id") == job_id:
            found.append(record)
    return found


def test_worker_and_writer_log_lines_carry_the_request_id(stack: Stack) -> None:
    api = stack.start("api", "writer")
    failing, failing_request = submit(api.url, seeded_png(1, ERROR_MARKER))
    refused, refused_request = submit(api.url, seeded_png(2))
    refuse_success_of(stack.db, [refused])
    worker = stack.start("worker", "writer", **ENGINE)
    writer = stack.start("writer", "writer", **ENGINE)
    stack.db.wait_all_done([failing, refused])
    worker_lines = lines_about(worker, failing)
    writer_lines = lines_about(writer, refused)
    assert worker_lines, "the worker logged nothing about the failing job"
    assert writer_lines, "the writer logged nothing about the refused result"
    assert {line["request_id"] for line in worker_lines} == {failing_request}
    assert {line["request_id"] for line in writer_lines} == {refused_request}
    letters = asyncio.run(read_topic(stack.bootstrap, stack.topics.dead_letters, timeout_s=2.0))
    by_job = {h["ocr-job_id"].decode(): h.get("ocr-request-id") for _, _, h in letters}
    assert by_job == {failing: failing_request.encode(), refused: refused_request.encode()}
