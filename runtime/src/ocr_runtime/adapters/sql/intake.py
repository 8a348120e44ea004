"""`JobIntake` with database blobs: the image chunk and the job row go in one transaction, and
the submissions that arrive while a transaction is in flight share the next one (group
commit). A submission costs a few rows in a multi-row INSERT instead of two transactions of
its own, which is what bounded the API: database round trips, not CPU."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ocr_runtime.adapters.failures import boundary
from ocr_runtime.adapters.sql._mapping import job_to_row
from ocr_runtime.adapters.sql.blobs import CHUNK_BYTES
from ocr_runtime.adapters.sql.repository import SqlJobRepository
from ocr_runtime.adapters.sql.tables import blob_chunks, jobs
from ocr_runtime.domain import Job

log = logging.getLogger(__name__)

# Bounds of one shared transaction: rows, and image bytes (the multi-row INSERT is one
# statement, so it stays far below MariaDB's max_allowed_packet).
GROUP_MAX_JOBS = 256
GROUP_MAX_BYTES = CHUNK_BYTES
# A group's inserts can deadlock with a worker's status updates (InnoDB gap locks on the
# status index); the server rolls the group back, and writing it again is the remedy.
GROUP_ATTEMPTS = 5
_RETRY_DELAY_S = 0.005
# How long outbox marks gather before one UPDATE writes them. Without it, at a few hundred
# requests a second nearly every mark was a transaction of its own, and those cost the API
# more CPU than the submissions' inserts (2.2 against 1.8 ms per request at 300/s). Far below
# the sweeper's republish age: a job is never sent twice for lack of its mark.
MARKS_LINGER_S = 0.05


def _new_future() -> asyncio.Future[Job]:
    return asyncio.get_running_loop().create_future()


@dataclass(slots=True)
class _Pending:
    job: Job
    image: bytes
    done: asyncio.Future[Job] = field(default_factory=_new_future)


@boundary
class GroupCommitIntake:
    """Queue submissions; one flusher task writes everything queued in one transaction, then
    the next group. Images larger than one chunk are written on their own."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        repository: SqlJobRepository | None = None,
        marks_linger_s: float = MARKS_LINGER_S,
    ) -> None:
        self._engine = engine
        self._chunk_bytes = chunk_bytes
        self._repository = repository or SqlJobRepository(engine)
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._marks = _GroupedMarks(self._repository, marks_linger_s)

    async def store(self, image: bytes, make_job: Callable[[str], Job]) -> Job:
        item = _Pending(make_job(uuid.uuid4().hex), image)
        if len(image) > min(self._chunk_bytes, GROUP_MAX_BYTES):
            return await self._store_one(item)
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._drain(), name="job-intake-flush")
        # Shielded: a cancelled request must not cancel the group its rows are part of.
        return await asyncio.shield(item.done)

    async def mark_published(self, job_id: str) -> None:
        # Not awaited: the job is in the queue already, and the mark is only the outbox's
        # bookkeeping; the request answers without a third database round trip.
        self._marks.add(job_id)

    async def aclose(self) -> None:
        """Wait for the group in flight (shutdown)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._marks.aclose()

    async def _drain(self) -> None:
        while self._queue:
            group = self._take_group()
            try:
                await self._write_group(group)
            except IntegrityError:
                # An idempotency key is taken (by a stored job or within the group): store
                # one by one, so only those submissions resolve to the existing jobs.
                await asyncio.gather(*(self._resolve_alone(item) for item in group))
            except Exception as exc:
                _fail(group, exc)
            else:
                for item in group:
                    _settle(item, item.job)

    def _take_group(self) -> list[_Pending]:
        size = 0
        count = 0
        for item in self._queue:
            if count == GROUP_MAX_JOBS or (count and size + len(item.image) > GROUP_MAX_BYTES):
                break
            size += len(item.image)
            count += 1
        group, self._queue = self._queue[:count], self._queue[count:]
        return group

    async def _write_group(self, group: Sequence[_Pending]) -> None:
        for attempt in range(1, GROUP_ATTEMPTS + 1):
            try:
                await self._insert_group(group)
            except OperationalError:
                if attempt == GROUP_ATTEMPTS:
                    raise
                log.info("storing submitted jobs: retrying after a lock conflict", exc_info=True)
                await asyncio.sleep(_RETRY_DELAY_S * attempt)
            else:
                return

    async def _insert_group(self, group: Sequence[_Pending]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                blob_chunks.insert(),
                [{"blob_id": i.job.blob_id, "seq": 0, "data": i.image} for i in group],
            )
            await conn.execute(jobs.insert(), [job_to_row(i.job) for i in group])

    async def _resolve_alone(self, item: _Pending) -> None:
        try:
            stored = await self._store_one(item)
        except Exception as exc:
            _fail([item], exc)
        else:
            _settle(item, stored)

    async def _store_one(self, item: _Pending) -> Job:
        job = item.job
        try:
            async with self._engine.begin() as conn:
                await self._insert_chunks(conn, job.blob_id, item.image)
                await conn.execute(jobs.insert(), job_to_row(job))
        except IntegrityError:
            # Rolled back together: no orphan blob is left behind.
            key = job.idempotency_key
            existing = None if key is None else await self._repository.find_by_idempotency_key(key)
            if existing is None:
                raise
            return existing
        return job

    async def _insert_chunks(self, conn: AsyncConnection, blob_id: str, data: bytes) -> None:
        size = self._chunk_bytes
        # One statement per chunk: a multi-row INSERT of big chunks could exceed the packet.
        for seq, start in enumerate(range(0, max(len(data), 1), size)):
            await conn.execute(
                blob_chunks.insert(),
                {"blob_id": blob_id, "seq": seq, "data": data[start : start + size]},
            )


class _GroupedMarks:
    """Outbox marks, written in the background: those that arrive within `linger_s`, or while
    one UPDATE is in flight, together in the next; a mark per request would be a commit per
    request again. A mark that is never written (the database away, the process killed
    first) leaves its job to the outbox sweeper, which publishes it once more; workers shrug
    that off (idempotent on job_id)."""

    def __init__(self, repository: SqlJobRepository, linger_s: float) -> None:
        self._repository = repository
        self._linger_s = linger_s
        self._pending: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def add(self, job_id: str) -> None:
        self._pending.add(job_id)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._drain(), name="outbox-marks")

    async def _drain(self) -> None:
        while self._pending:
            if not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._linger_s)
            group, self._pending = self._pending, set()
            try:
                await self._repository.mark_published(sorted(group))
            except Exception:
                log.warning("marking %d jobs published failed; the outbox sweeper will "
                            "publish them again", len(group), exc_info=True)  # fmt: skip

    async def aclose(self) -> None:
        """Write the marks still pending at once (shutdown)."""
        self._closing.set()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)


def _settle(item: _Pending, job: Job) -> None:
    if not item.done.done():
        item.done.set_result(job)


def _fail(group: Sequence[_Pending], exc: BaseException) -> None:
    log.warning("storing %d submitted jobs failed", len(group), exc_info=exc)
    for item in group:
        if not item.done.done():
            item.done.set_exception(exc)
