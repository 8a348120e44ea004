"""`JobRepository` on SQLAlchemy Core, for SQLite and MySQL/MariaDB alike. Bulk operations are
set-based (one statement per chunk of jobs), and each status filter is derived from the
domain's transition table, so storage cannot allow a move the domain forbids."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ocr_runtime.adapters.failures import boundary
from ocr_runtime.adapters.sql._mapping import (
    MAX_ERROR_MESSAGE,
    from_db_time,
    job_from_row,
    job_to_row,
    to_db_time,
)
from ocr_runtime.adapters.sql.finish import CHUNK, Finish, finish_statement
from ocr_runtime.adapters.sql.finish import chunks as finish_chunks
from ocr_runtime.adapters.sql.tables import jobs
from ocr_runtime.application.messages import JobOutcome
from ocr_runtime.domain import Job, JobErrorCode, JobStatus, statuses_allowing

_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _values(statuses: frozenset[JobStatus]) -> list[str]:
    return sorted(s.value for s in statuses)


# A job may (re)start from every status the table lets move to RUNNING, and while RUNNING.
_STARTABLE = _values(statuses_allowing(JobStatus.RUNNING) | {JobStatus.RUNNING})
_CLAIMABLE = _values(statuses_allowing(JobStatus.RUNNING))
_REQUEUEABLE = _values(statuses_allowing(JobStatus.QUEUED))


def ids_in(column: sa.Column[str]) -> sa.ColumnElement[bool]:
    """`column IN :ids`, the list bound at execution (`{"ids": [...]}`)."""
    return column.in_(sa.bindparam("ids", expanding=True))


def _start(statuses: list[str]) -> sa.Update:
    return (
        jobs.update()
        .where(ids_in(jobs.c.job_id), jobs.c.status.in_(statuses))
        .values(
            status=JobStatus.RUNNING.value,
            attempts=jobs.c.attempts + 1,
            started_at=sa.bindparam("now", type_=jobs.c.started_at.type),
        )
    )


# The workers' per-batch statements, built once: SQLAlchemy keys its cache of compiled
# statements on the statement object, and one built per call paid a cache-key traversal and
# its coercions every batch (a third of a claim's CPU on MariaDB).
_SELECT = jobs.select().where(ids_in(jobs.c.job_id))
_CLAIM = _start(_CLAIMABLE)
_MARK_RUNNING = _start(_STARTABLE)
_REQUEUE = (
    jobs.update()
    .where(ids_in(jobs.c.job_id), jobs.c.status.in_(_REQUEUEABLE))
    .values(status=JobStatus.QUEUED.value)
)
_MARK_PUBLISHED = (
    jobs.update()
    .where(ids_in(jobs.c.job_id), jobs.c.published_at.is_(None))
    .values(published_at=sa.bindparam("now", type_=jobs.c.published_at.type))
)


@boundary
class SqlJobRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, job: Job) -> Job:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(jobs.insert().values(**job_to_row(job)))
        except IntegrityError:
            if job.idempotency_key is None:
                raise
            existing = await self.find_by_idempotency_key(job.idempotency_key)
            if existing is None:
                raise
            return existing
        return job

    async def get(self, job_id: str) -> Job | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(jobs.select().where(jobs.c.job_id == job_id))).first()
        return None if row is None else job_from_row(row)

    async def find_by_idempotency_key(self, key: str) -> Job | None:
        query = jobs.select().where(jobs.c.idempotency_key == key)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else job_from_row(row)

    async def release_idempotency_key(self, job_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                jobs.update()
                .where(
                    jobs.c.job_id == job_id,
                    jobs.c.status == JobStatus.FAILED.value,
                    jobs.c.error_code == JobErrorCode.QUEUE_UNAVAILABLE.value,
                )
                .values(idempotency_key=None)
            )

    async def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        async with self._engine.connect() as conn:
            return await self._select(conn, job_ids)

    async def mark_running(self, job_ids: Sequence[str]) -> dict[str, Job]:
        now = to_db_time(datetime.now(UTC))
        async with self._engine.begin() as conn:
            for chunk in _chunks(list(dict.fromkeys(job_ids))):
                await conn.execute(_MARK_RUNNING, {"ids": list(chunk), "now": now})
            return await self._select(conn, job_ids)

    async def claim(self, job_ids: Sequence[str]) -> dict[str, Job]:
        found: dict[str, Job] = {}
        now = to_db_time(datetime.now(UTC))
        async with self._engine.begin() as conn:
            found = await self._select(conn, job_ids)
            queued = [j for j, job in found.items() if job.status is JobStatus.QUEUED]
            for chunk in _chunks(queued):
                await conn.execute(_CLAIM, {"ids": list(chunk), "now": now})
        return found

    async def record_outcomes(self, outcomes: Sequence[JobOutcome]) -> int:
        first: dict[str, JobOutcome] = {}
        for outcome in outcomes:
            first.setdefault(outcome.job_id, outcome)  # first outcome of a job wins
        ended = [o for o in first.values() if o.result is not None or o.error is not None]
        rows = [Finish.of(o) for o in ended]
        succeeded = [r for r in rows if r.error_code is None]
        failed = [r for r in rows if r.error_code is not None]
        changed = 0
        async with self._engine.begin() as conn:
            for target, group in ((JobStatus.SUCCEEDED, succeeded), (JobStatus.FAILED, failed)):
                for chunk in finish_chunks(group):
                    statement, params = finish_statement(target, chunk)
                    changed += int((await conn.execute(statement, params)).rowcount)
        return changed

    async def requeue(self, job_ids: Sequence[str]) -> None:
        async with self._engine.begin() as conn:
            for chunk in _chunks(list(dict.fromkeys(job_ids))):
                await conn.execute(_REQUEUE, {"ids": list(chunk)})

    async def record_progress(self, progress: Mapping[str, tuple[int, int]]) -> None:
        async with self._engine.begin() as conn:
            for job_id in sorted(progress):  # one lock order: no deadlock with another batch
                done, total = progress[job_id]
                await conn.execute(
                    jobs.update()
                    .where(jobs.c.job_id == job_id, jobs.c.status == JobStatus.RUNNING.value)
                    .values(pages_done=done, pages=total)
                )

    async def mark_published(self, job_ids: Sequence[str]) -> None:
        now = to_db_time(datetime.now(UTC))
        async with self._engine.begin() as conn:
            for chunk in _chunks(sorted(set(job_ids))):
                await conn.execute(_MARK_PUBLISHED, {"ids": list(chunk), "now": now})

    async def abandon(self, outcome: JobOutcome) -> bool:
        assert outcome.error is not None, "only a failure abandons a job"
        async with self._engine.begin() as conn:
            result = await conn.execute(
                jobs.update()
                .where(
                    jobs.c.job_id == outcome.job_id,
                    jobs.c.status == JobStatus.QUEUED.value,
                    jobs.c.published_at.is_(None),
                )
                .values(
                    status=JobStatus.FAILED.value,
                    finished_at=to_db_time(outcome.finished_at),
                    error_code=outcome.error.code.value,
                    error_message=outcome.error.message[:MAX_ERROR_MESSAGE],
                )
            )
        return int(result.rowcount) == 1

    async def unpublished(self, created_before: datetime, limit: int) -> list[Job]:
        query = (
            jobs.select()
            .where(
                jobs.c.published_at.is_(None),
                jobs.c.created_at < to_db_time(created_before),
                jobs.c.status == JobStatus.QUEUED.value,
            )
            .order_by(jobs.c.created_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [job_from_row(row) for row in await conn.execute(query)]

    async def oldest_unfinished(self) -> datetime | None:
        open_statuses = [s.value for s in JobStatus if not s.is_terminal]
        query = sa.select(sa.func.min(jobs.c.created_at)).where(jobs.c.status.in_(open_statuses))
        async with self._engine.connect() as conn:
            oldest = (await conn.execute(query)).scalar()
        return from_db_time(oldest)

    async def unfinished(self, limit: int = 100_000) -> list[Job]:
        """Jobs not terminal yet, oldest first: what an all-in-one server re-enqueues after a
        restart (its in-process queue did not survive)."""
        open_statuses = [s.value for s in JobStatus if not s.is_terminal]
        query = (
            jobs.select()
            .where(jobs.c.status.in_(open_statuses))
            .order_by(jobs.c.created_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [job_from_row(row) for row in await conn.execute(query)]

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    @staticmethod
    async def _select(conn: AsyncConnection, job_ids: Sequence[str]) -> dict[str, Job]:
        found: dict[str, Job] = {}
        for chunk in _chunks(list(dict.fromkeys(job_ids))):
            rows = await conn.execute(_SELECT, {"ids": list(chunk)})
            for row in rows:
                found[row.job_id] = job_from_row(row)
        return found
