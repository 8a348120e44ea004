"""What the API's database work per upload costs: the first implementation, the changes its
profile pointed at, and the group commit the API uses now. Run when the capacity target is
missed, so the summary can say how much each change saves instead of guessing.

Each variant stores one blob chunk and one job row per upload, with the runtime's own table
definitions, from one process on uvloop with 32 uploads in flight, and reports uploads/s and
this process's CPU time per upload.
"""

from __future__ import annotations

import asyncio
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import uvloop
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from benchmarks.services import MariaDb
from ocr_runtime.adapters.sql import create_database_engine
from ocr_runtime.adapters.sql.intake import GroupCommitIntake
from ocr_runtime.adapters.sql.tables import blob_chunks, jobs, metadata
from ocr_runtime.domain import Job

DATABASE = "bench_db_paths"
_BLOB = b"\x89PNG" + bytes(300)


def _row() -> dict[str, Any]:
    return {
        "job_id": uuid.uuid4().hex,
        "blob_id": uuid.uuid4().hex,
        "status": "queued",
        "attempts": 0,
        "idempotency_key": None,
        "width": 64,
        "height": 32,
        "result": None,
        "error_code": None,
        "error_message": None,
        "created_at": datetime.now(UTC).replace(tzinfo=None),
        "started_at": None,
        "finished_at": None,
    }


async def _built_per_call(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(blob_chunks.insert().values(blob_id=row["blob_id"], seq=0, data=_BLOB))
    await conn.execute(jobs.insert().values(**row))


async def _prebuilt(conn: AsyncConnection, row: dict[str, Any]) -> None:
    # constant statements, parameters passed separately: the compiled form is reused
    await conn.execute(blob_chunks.insert(), {"blob_id": row["blob_id"], "seq": 0, "data": _BLOB})
    await conn.execute(jobs.insert(), row)


Upload = Callable[[AsyncEngine], Awaitable[None]]


async def _two_transactions(engine: AsyncEngine) -> None:
    """The first implementation: DatabaseBlobStore.put then SqlJobRepository.add."""
    row = _row()
    async with engine.begin() as conn:
        await conn.execute(blob_chunks.insert().values(blob_id=row["blob_id"], seq=0, data=_BLOB))
    async with engine.begin() as conn:
        await conn.execute(jobs.insert().values(**row))


async def _one_transaction(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await _built_per_call(conn, _row())


async def _one_transaction_prebuilt(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await _prebuilt(conn, _row())


_INTAKES: dict[int, GroupCommitIntake] = {}


async def _group_commit(engine: AsyncEngine) -> None:
    """What the API does now: `GroupCommitIntake` (concurrent uploads share a transaction)."""
    intake = _INTAKES.setdefault(id(engine), GroupCommitIntake(engine))
    await intake.store(_BLOB, lambda blob_id: Job.submit(blob_id, width=64, height=32))


VARIANTS: list[tuple[str, Upload]] = [
    (
        "2 transactions per upload, statements built per call (first implementation)",
        _two_transactions,
    ),
    ("1 transaction per upload, statements built per call", _one_transaction),
    ("1 transaction per upload, prebuilt statements", _one_transaction_prebuilt),
    ("group commit, GroupCommitIntake (current implementation)", _group_commit),
]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(url: str, upload: Upload, count: int) -> dict[str, float]:
    engine = create_database_engine(url, pool_size=10)  # the runtime's own pool settings
    gate = asyncio.Semaphore(32)

    async def one() -> None:
        async with gate:
            await upload(engine)

    try:
        await asyncio.gather(*(one() for _ in range(100)))  # warm the pool and the caches
        cpu, wall = _cpu(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    finally:
        intake = _INTAKES.pop(id(engine), None)
        if intake is not None:
            await intake.aclose()
        await engine.dispose()
    return {
        "uploads_per_s": round(count / wall, 1),
        "cpu_ms_per_upload": round(cpu / count * 1e3, 3),
    }


async def _run_all(url: str, count: int) -> dict[str, dict[str, float]]:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    return {name: await _measure(url, upload, count) for name, upload in VARIANTS}


def run(database_url: str, count: int = 1000) -> dict[str, dict[str, float]]:
    db = MariaDb(database_url)
    url = db.recreate(DATABASE)
    try:
        return uvloop.run(_run_all(url, count))
    finally:
        db.drop(DATABASE)
