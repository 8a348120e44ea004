"""The statements that finish jobs: one UPDATE per chunk of jobs, per-job values through
CASE on job_id, and a WHERE that leaves jobs already terminal alone (the first terminal
outcome wins).

The statement text depends only on the target status and the chunk's length, so it is built
once per pair and SQLAlchemy compiles it once: a batch binds its values and nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ocr_runtime.adapters.sql._mapping import MAX_ERROR_MESSAGE, result_to_json, to_db_time
from ocr_runtime.adapters.sql.tables import jobs
from ocr_runtime.application.messages import JobOutcome
from ocr_runtime.domain import JobStatus, statuses_allowing

# Jobs per statement: its bound parameters stay far below SQLite's limit (32766).
CHUNK = 500
# Bytes of values per statement: a quarter of MariaDB's default max_allowed_packet (16 MiB),
# and one row at most 12 MiB (a MEDIUMTEXT holds 16 MiB; the packet must carry the SQL too).
STATEMENT_MAX_BYTES = 4 * 1024 * 1024
ROW_MAX_BYTES = 12 * 1024 * 1024
_ROW_OVERHEAD_BYTES = 256


class ResultTooLargeError(ValueError):
    """A result no statement can carry (permanent: the same result is refused again)."""


@dataclass(frozen=True, slots=True)
class Finish:
    """One job's terminal values: `text` is the result's JSON, or the error message."""

    job_id: str
    finished_at: datetime
    text: str
    error_code: str | None = None

    @classmethod
    def of(cls, outcome: JobOutcome) -> Finish:
        finished_at = to_db_time(outcome.finished_at)
        assert finished_at is not None, "an outcome has its finish time"
        if outcome.result is not None:
            return cls(outcome.job_id, finished_at, result_to_json(outcome.result))
        assert outcome.error is not None, "an outcome has a result or an error"
        message = outcome.error.message[:MAX_ERROR_MESSAGE]
        return cls(outcome.job_id, finished_at, message, outcome.error.code.value)


def chunks(rows: Sequence[Finish]) -> Iterator[Sequence[Finish]]:
    """Chunks of at most CHUNK rows and STATEMENT_MAX_BYTES of values each, so that no
    statement exceeds the server's max_allowed_packet (a bigger one makes MariaDB drop the
    connection, which looks transient and would be retried forever). One result above
    ROW_MAX_BYTES can never be written: refused before it is sent."""
    chunk: list[Finish] = []
    size = 0
    for row in rows:
        # The id travels twice (CASE and IN), plus SQL around the values.
        length = len(row.text.encode()) + _ROW_OVERHEAD_BYTES
        if length > ROW_MAX_BYTES:
            raise ResultTooLargeError(
                f"job {row.job_id}: result of {length} bytes exceeds {ROW_MAX_BYTES}"
            )
        if chunk and (len(chunk) == CHUNK or size + length > STATEMENT_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += length
    if chunk:
        yield chunk


def finish_statement(
    target: JobStatus, rows: Sequence[Finish]
) -> tuple[sa.TextClause, dict[str, Any]]:
    """The UPDATE moving `rows` to `target`, and its parameters."""
    params: dict[str, Any] = {}
    for index, row in enumerate(rows):
        params[f"j{index}"] = row.job_id
        params[f"f{index}"] = row.finished_at
        params[f"t{index}"] = row.text
        if target is JobStatus.FAILED:
            params[f"c{index}"] = row.error_code
    return _statement(target, len(rows)), params


@functools.lru_cache(maxsize=2 * CHUNK)
def _statement(target: JobStatus, size: int) -> sa.TextClause:
    indices = range(size)

    def case(column: str, prefix: str) -> str:
        whens = " ".join(f"WHEN :j{i} THEN :{prefix}{i}" for i in indices)
        return f"{column} = CASE job_id {whens} ELSE {column} END"

    sets = ["status = :status", case("finished_at", "f")]
    if target is JobStatus.SUCCEEDED:
        sets += [case("result", "t"), "error_code = NULL", "error_message = NULL"]
    else:
        sets += [case("error_code", "c"), case("error_message", "t")]
    allowed = sorted(s.value for s in statuses_allowing(target))
    ids = ", ".join(f":j{i}" for i in indices)
    statuses = ", ".join(f":s{i}" for i in range(len(allowed)))
    sql = (
        f"UPDATE {jobs.name} SET {', '.join(sets)} "
        f"WHERE job_id IN ({ids}) AND status IN ({statuses})"
    )
    finished_at = jobs.c.finished_at.type
    binds = [sa.bindparam(f"f{i}", type_=finished_at) for i in indices]
    fixed = {"status": target.value} | {f"s{i}": value for i, value in enumerate(allowed)}
    return sa.text(sql).bindparams(*binds, **fixed)
