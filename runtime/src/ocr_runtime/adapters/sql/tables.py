"""Table definitions (SQLAlchemy Core). The Alembic migrations create exactly these; the
domain never sees them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData()

# MySQL/MariaDB need explicit sizes: DATETIME keeps microseconds only with fsp=6, TEXT holds
# 64 KiB (a dense page's result can be larger), BLOB 64 KiB.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
IDEMPOTENCY_KEY = sa.String(200).with_variant(
    mysql.VARCHAR(200, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)
CHUNK = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("blob_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Compared byte for byte: a case-insensitive collation would let `Abc` find `abc`.
    sa.Column("idempotency_key", IDEMPOTENCY_KEY, nullable=True, unique=True),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("result", LONG_TEXT, nullable=True),
    sa.Column("error_code", sa.String(32), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("started_at", TIMESTAMP, nullable=True),
    sa.Column("finished_at", TIMESTAMP, nullable=True),
    sa.Column("published_at", TIMESTAMP, nullable=True),
    sa.Column("image_sha256", sa.String(64), nullable=True),
    sa.Column("text_layer", sa.String(16), nullable=False, server_default="ignore"),
    # Progress of a document while it runs (pages recognised or read, pages in all).
    sa.Column("pages", sa.Integer, nullable=True),
    sa.Column("pages_done", sa.Integer, nullable=True),
    sa.Index("ix_jobs_status_created_at", "status", "created_at"),
    # The outbox sweeper's lookup: unpublished jobs, oldest first.
    sa.Index("ix_jobs_published_at_created_at", "published_at", "created_at"),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

# Images in chunks small enough for MariaDB's default max_allowed_packet (16 MiB), whatever
# the upload limit.
blob_chunks = sa.Table(
    "blob_chunks",
    metadata,
    sa.Column("blob_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", CHUNK, nullable=False),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)
