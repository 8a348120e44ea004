"""Honest idempotency keys: room for the scope prefix ("<scope>/<key>"), a binary collation
on MySQL/MariaDB (keys compare byte for byte), and the image's SHA-256 beside the key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = sa.String(200).with_variant(
    mysql.VARCHAR(200, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column(
            "idempotency_key", existing_type=sa.String(128), type_=KEY, existing_nullable=True
        )
        batch.add_column(sa.Column("image_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("image_sha256")
        batch.alter_column(
            "idempotency_key", existing_type=KEY, type_=sa.String(128), existing_nullable=True
        )
