"""What a job does with a PDF page's own text: `ignore` (recognise the pixels, as before) or
`prefer` (read the page's text layer when it has one).

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


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("text_layer")
