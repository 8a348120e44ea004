"""Failures inside a worker's batch, on the real broker and database, judged by the database:

- storage blips (deadlocks reported by the server) while recording results retry only the
  recording: no attempt is spent, the engine does not run again, every job succeeds;
- a batch whose rows keep losing lock races (one row in five, so a transaction of a hundred
  rows almost never passes) is written in smaller pieces and every job still succeeds;
- a result the database refuses fails that job alone (`unwritable`, dead-lettered first), in
  every mode, and its batch neighbours succeed on their first attempt;
- a job that kills its worker (SIGKILL from inside the engine, as the OOM killer would) is
  failed and dead-lettered after `OCR_MAX_ATTEMPTS` crashes, in every mode, while every other
  job of its batch succeeds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.dataplane.conftest import Stack
from tests.dataplane.faults import (
    CRASH_MARKER,
    deadlocks_on_success,
    refuse_success_of,
    seeded_png,
)
from tests.dataplane.support import RuntimeProcess, read_topic

pytestmark = pytest.mark.integration

ENGINE = {"OCR_ENGINE": "synthetic", "OCR_MAX_ATTEMPTS": "3"}
# Everything is queued before the worker starts, so the jobs share batches.
BATCHING = {"OCR_BATCH_MAX_WAIT_MS": "300", "OCR_BATCH_MAX_SIZE": "16"}


def post_images(api_url: str, images: list[bytes]) -> list[str]:
    ids = []
    with httpx.Client(base_url=api_url, timeout=30.0) as client:
        for n, image in enumerate(images):
            response = client.post("/v1/jobs", files={"image": (f"{n}.png", image, "image/png")})
            assert response.status_code == 202, response.text
            ids.append(response.json()["job_id"])
    return ids


def texts(stack: Stack) -> dict[str, str | None]:
    return {j: (None if r.result is None else str(r.result)) for j, r in stack.db.rows().items()}


def dead_letters(stack: Stack) -> list[dict[str, bytes]]:
    letters = asyncio.run(read_topic(stack.bootstrap, stack.topics.dead_letters, timeout_s=2.0))
    return [headers for _, _, headers in letters]


@pytest.mark.parametrize("mode", ["standard", "batched"])
def test_storage_blips_spend_no_attempt_and_do_not_rerun_inference(stack: Stack, mode: str) -> None:
    api = stack.start("api", mode)
    ids = post_images(api.url, [seeded_png(n) for n in range(12)])
    deadlocks_on_success(stack.db, count=3)
    stack.start("worker", mode, **ENGINE, **BATCHING)
    stack.db.wait_all_done(ids)
    rows = stack.db.rows()
    assert {j: (rows[j].status, rows[j].attempts) for j in ids} == {
        j: ("succeeded", 1) for j in ids
    }
    by_job = texts(stack)
    assert all(f'"seed {n}"' in str(by_job[j]) for n, j in enumerate(ids))
    assert dead_letters(stack) == []


@pytest.mark.parametrize("mode", ["batched", "writer"])
def test_batches_that_keep_losing_lock_races_are_written_in_pieces(stack: Stack, mode: str) -> None:
    api = stack.start("api", mode)
    ids = post_images(api.url, [seeded_png(n) for n in range(120)])
    deadlocks_on_success(stack.db, chance=0.2)  # per row: 0.8 ** 100 is 2e-10 per transaction
    stack.start("worker", mode, **ENGINE, **(BATCHING | {"OCR_BATCH_MAX_SIZE": "32"}))
    if mode == "writer":  # results pile up for 5 s, then go to the database in one batch
        stack.start("writer", mode, **ENGINE, OCR_WRITER_BATCH_MAX_WAIT_MS="5000")
    stack.db.wait_all_done(ids)
    rows = stack.db.rows()
    assert {j: (rows[j].status, rows[j].attempts) for j in ids} == {
        j: ("succeeded", 1) for j in ids
    }
    assert dead_letters(stack) == []


@pytest.mark.parametrize("mode", ["standard", "batched", "writer"])
def test_a_refused_result_fails_alone_as_unwritable(stack: Stack, mode: str) -> None:
    api = stack.start("api", mode)
    ids = post_images(api.url, [seeded_png(n) for n in range(10)])
    refused = ids[4]
    refuse_success_of(stack.db, [refused])
    stack.start("worker", mode, **ENGINE, **BATCHING)
    if mode == "writer":
        stack.start("writer", mode, **ENGINE)
    stack.db.wait_all_done(ids)
    rows = stack.db.rows()
    assert (rows[refused].status, rows[refused].error_code) == ("failed", "unwritable")
    others = [j for j in ids if j != refused]
    assert {rows[j].status for j in others} == {"succeeded"}
    if mode != "writer":
        assert {rows[j].attempts for j in others} == {1}
    letters = dead_letters(stack)
    assert [(h["ocr-reason"], h["ocr-job_id"]) for h in letters] == [
        (b"unwritable", refused.encode())
    ]


def supervise(stack: Stack, mode: str, ids: list[str], restarts: int, timeout_s: float) -> int:
    """Keep one worker running, like a Deployment would, until every job is finished; return
    how many times it had to be started again."""
    worker: RuntimeProcess = stack.launch("worker", mode, **ENGINE, **BATCHING)
    started_again = 0
    deadline = time.monotonic() + timeout_s
    while stack.db.count_done(ids) < len(ids):
        assert time.monotonic() < deadline, f"jobs still open: {stack.db.statuses(ids)}"
        assert worker.popen is not None
        if worker.popen.poll() is not None:
            started_again += 1
            assert started_again <= restarts, (
                f"the worker died {started_again} times; jobs: {stack.db.statuses(ids)}"
            )
            worker = stack.launch("worker", mode, **ENGINE, **BATCHING)
        time.sleep(0.5)
    return started_again


@pytest.mark.parametrize("mode", ["batched", "writer"])
def test_a_job_that_kills_its_worker_ends_failed_and_alone(stack: Stack, mode: str) -> None:
    api = stack.start("api", mode)
    images = [seeded_png(n) for n in range(11)]
    images.insert(5, seeded_png(99, CRASH_MARKER))
    ids = post_images(api.url, images)
    poison = ids[5]
    if mode == "writer":
        stack.start("writer", mode, **ENGINE)
    crashes = supervise(stack, mode, ids, restarts=6, timeout_s=240)
    rows = stack.db.rows()
    assert (rows[poison].status, rows[poison].error_code) == ("failed", "attempts_exhausted")
    assert crashes == 3  # one per attempt: OCR_MAX_ATTEMPTS
    others = [j for j in ids if j != poison]
    assert {rows[j].status for j in others} == {"succeeded"}, stack.db.statuses(ids)
    letters = dead_letters(stack)
    assert [(h["ocr-reason"], h["ocr-job_id"]) for h in letters] == [
        (b"attempts_exhausted", poison.encode())
    ]


def test_an_image_the_blob_folder_cannot_serve_fails_alone(stack: Stack, tmp_path: Path) -> None:
    folder = {"OCR_BLOB_BACKEND": "filesystem", "OCR_BLOB_DIR": str(tmp_path)}
    api = stack.start("api", "batched", **folder)
    ids = post_images(api.url, [seeded_png(n) for n in range(6)])
    broken = stack.db.rows()[ids[2]]
    blob = next(tmp_path.rglob(str(blob_of(stack, broken.job_id))))
    blob.unlink()
    blob.mkdir()  # reading it now fails with EISDIR, as a permission error would: for good
    stack.start("worker", "batched", **ENGINE, **BATCHING, **folder)
    stack.db.wait_all_done(ids)
    rows = stack.db.rows()
    assert (rows[ids[2]].status, rows[ids[2]].error_code) == ("failed", "storage_error")
    assert {rows[j].status for j in ids if j != ids[2]} == {"succeeded"}
    assert [(h["ocr-reason"], h["ocr-job_id"]) for h in dead_letters(stack)] == [
        (b"unreadable", ids[2].encode())
    ]


def blob_of(stack: Stack, job_id: str) -> str:
    with stack.db.engine.connect() as conn:
        query = sa.text("SELECT blob_id FROM jobs WHERE job_id = :j")
        return str(conn.execute(query, {"j": job_id}).scalar_one())
