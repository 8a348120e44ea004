"""The job table the baselines share (Celery's and Ray Serve's): the columns the harness
reads (`status`, `created_at`, `finished_at`, `result`), nothing of the runtime's schema."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.dialects.mysql import DATETIME, LONGBLOB

metadata = MetaData()
jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("image", LargeBinary().with_variant(LONGBLOB(), "mysql"), nullable=False),
    Column("result", Text, nullable=True),
    Column("created_at", DATETIME(fsp=6), nullable=False),
    Column("finished_at", DATETIME(fsp=6), nullable=True),
)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
