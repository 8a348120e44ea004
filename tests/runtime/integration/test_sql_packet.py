"""Statements stay below the server's packet limit: a batch of outcomes whose results add up
to more than MariaDB's max_allowed_packet (16 MiB by default) is recorded in several
statements, and a result no statement could carry is refused as a permanent error (never the
dropped connection the server answers an oversized packet with, which looks transient)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ocr_runtime.adapters.sql import SqlJobRepository
from ocr_runtime.application import JobOutcome
from ocr_runtime.domain import Job, JobStatus, OcrLine, OcrResult

pytestmark = pytest.mark.integration

_BOX = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def big_result(megabytes: float) -> OcrResult:
    line = "x" * 1000
    count = int(megabytes * 1024 * 1024 / 1000)
    return OcrResult(lines=tuple(OcrLine(line, 1.0, _BOX) for _ in range(count)))


async def packet_limit(engine: AsyncEngine) -> int:
    if engine.dialect.name == "sqlite":
        return 16 * 1024 * 1024  # no packet; the same bound applies
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT @@max_allowed_packet"))).scalar_one())


async def test_outcomes_larger_than_a_packet_are_split(engine: AsyncEngine) -> None:
    repo = SqlJobRepository(engine)
    limit = await packet_limit(engine)
    result = big_result(1.0)
    count = limit // (1024 * 1024) + 8  # together well above one packet
    jobs = [await repo.add(Job.submit(f"b{n}", width=1, height=1)) for n in range(count)]
    now = datetime.now(UTC)
    changed = await repo.record_outcomes(
        [JobOutcome(job_id=j.job_id, finished_at=now, result=result) for j in jobs]
    )
    assert changed == count
    stored = await repo.get_many([j.job_id for j in jobs])
    assert {s.status for s in stored.values()} == {JobStatus.SUCCEEDED}
    assert all(s.result == result for s in stored.values())


async def test_a_result_no_statement_can_carry_is_a_permanent_error(engine: AsyncEngine) -> None:
    from ocr_runtime.adapters.failures import is_transient  # noqa: PLC0415

    repo = SqlJobRepository(engine)
    job = await repo.add(Job.submit("huge", width=1, height=1))
    outcome = JobOutcome(job_id=job.job_id, finished_at=datetime.now(UTC), result=big_result(20))
    with pytest.raises(Exception) as caught:
        await repo.record_outcomes([outcome])
    assert not is_transient(caught.value)
    stored = await repo.get(job.job_id)
    assert stored is not None and stored.status is JobStatus.QUEUED
