"""The baseline to beat: the flow of seed 003 (`003_model_server_split.ko.md`).

A FastAPI endpoint reads the upload, stores the job row, and hands the image bytes to a Celery
task over Redis (the blocking `.delay()` call goes through a thread pool, as the seed does to
keep the event loop free); the Celery worker (prefork pool, default concurrency = cores) runs
the engine and persists the result to the same MariaDB, and, as in the seed, returns the
result to Celery's Redis result backend too. The seed's extra HTTP hop to a model server is
left out (the engine runs in the task), which only makes the baseline faster.

    uvicorn benchmarks.celery_baseline.app:api
    celery -A benchmarks.celery_baseline.app:celery_app worker

Configuration: BASELINE_DATABASE_URL (mysql+aiomysql://...), BASELINE_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import numpy as np
from celery import Celery
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image, UnidentifiedImageError
from sqlalchemy import Engine, create_engine, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from benchmarks.baseline_db import jobs, metadata, utcnow

DATABASE_URL = os.environ.get("BASELINE_DATABASE_URL", "mysql+aiomysql://ocr:ocr@127.0.0.1/ocr")
REDIS_URL = os.environ.get("BASELINE_REDIS_URL", "redis://127.0.0.1:6379/0")

celery_app = Celery("baseline", broker=REDIS_URL, backend=REDIS_URL)
celery_app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


def _noop_predict(image_data: bytes) -> dict[str, Any]:
    """The zero-cost engine: decode the image as a model would, recognise nothing."""
    pixels = np.asarray(Image.open(io.BytesIO(image_data)).convert("RGB"))
    return {"text_boxes": [], "full_text": "", "status": "success", "shape": list(pixels.shape)}


_sync_engine: Engine | None = None


def _engine() -> Engine:
    """One pool per prefork child, created after the fork."""
    global _sync_engine  # noqa: PLW0603 - per-process singleton, as in the seed
    if _sync_engine is None:
        sync_url = DATABASE_URL.replace("mysql+aiomysql", "mysql+pymysql")
        _sync_engine = create_engine(sync_url, pool_size=2, pool_pre_ping=False)
    return _sync_engine


@celery_app.task(bind=True, name="ocr.extract_text")  # type: ignore[untyped-decorator]
def extract_text_task(self: Any, job_id: str, image_data: bytes) -> dict[str, Any]:
    result = _noop_predict(image_data)
    with _engine().begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.job_id == job_id)
            .values(status="succeeded", result=repr(result), finished_at=utcnow())
        )
    return result


_executor = ThreadPoolExecutor(max_workers=2)
_async_engine: AsyncEngine | None = None


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    global _async_engine  # noqa: PLW0603
    _async_engine = create_async_engine(
        DATABASE_URL, pool_size=10, connect_args={"charset": "utf8mb4"}
    )
    async with _async_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield
    await _async_engine.dispose()


api = FastAPI(title="Celery baseline (seed 003)", lifespan=_lifespan)


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise HTTPException(status_code=422, detail="not an image") from exc


@api.post("/v1/jobs", status_code=202)
async def submit(image: UploadFile = File(...)) -> dict[str, str]:  # noqa: B008
    data = await image.read()
    if not data:
        raise HTTPException(status_code=400, detail="empty upload")
    _image_size(data)
    job_id = uuid.uuid4().hex
    assert _async_engine is not None
    async with _async_engine.begin() as conn:
        await conn.execute(
            jobs.insert().values(job_id=job_id, status="queued", image=data, created_at=utcnow())
        )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(_executor, partial(extract_text_task.delay, job_id, data))
    return {"job_id": job_id, "status": "queued"}


@api.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
