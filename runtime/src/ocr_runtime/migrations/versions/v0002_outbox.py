"""Outbox: `jobs.published_at`, set once the queue acknowledged the job, so a sweeper can
republish jobs that were stored but never published (the API died in between).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("published_at", TIMESTAMP, nullable=True))
    # Rows from before the outbox: their publish outcome is unknown; counting them published
    # avoids a burst of republished jobs at upgrade (jobs still queued keep their messages).
    op.execute("UPDATE jobs SET published_at = created_at")
    op.create_index("ix_jobs_published_at_created_at", "jobs", ["published_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_published_at_created_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("published_at")
