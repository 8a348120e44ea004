"""Documents: what a job does with a PDF page's own text (`ignore`: recognise the pixels, as
before; `prefer`: read the page's text layer when it has one), and a running document's
progress (pages done, pages in all).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("text_layer", sa.String(16), nullable=False, server_default="ignore")
        )
        batch.add_column(sa.Column("pages", sa.Integer, nullable=True))
        batch.add_column(sa.Column("pages_done", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("pages_done")
        batch.drop_column("pages")
        batch.drop_column("text_layer")
