"""Faults injected into the real services: database errors raised by a trigger on the jobs
table (a deadlock the server reports as such, or a refusal), and images that make the
synthetic engine kill its process or fail."""

from __future__ import annotations

import io

import sqlalchemy as sa
from PIL import Image

from tests.dataplane.support import Database

CRASH_MARKER = (255, 0, 0)
ERROR_MARKER = (0, 0, 255)
SEED_BITS = 24


def seeded_png(seed: int, marker: tuple[int, int, int] | None = None) -> bytes:
    """What the synthetic engine reads as `seed <seed>`; `marker` at (0, 1) makes it crash
    (red) or fail (blue)."""
    image = Image.new("RGB", (48, 24), "white")
    for bit in range(SEED_BITS):
        if seed >> bit & 1:
            image.putpixel((bit, 0), (0, 0, 0))
    if marker is not None:
        image.putpixel((0, 1), marker)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _recreate_trigger(db: Database, condition: str, sqlstate: str, errno: int, text: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER IF EXISTS inject_fault"))
        conn.execute(
            sa.text(
                "CREATE TRIGGER inject_fault BEFORE UPDATE ON jobs FOR EACH ROW BEGIN "
                f"IF {condition} THEN SIGNAL SQLSTATE '{sqlstate}' "
                f"SET MYSQL_ERRNO = {errno}, MESSAGE_TEXT = '{text}'; END IF; END"
            )
        )


def deadlocks_on_success(db: Database, count: int | None = None, chance: float = 1.0) -> None:
    """Recording a success fails with a real deadlock error (1213): the first `count` times
    (a sequence counts them; sequences ignore rollbacks), or with probability `chance`."""
    limit = ""
    if count is not None:
        with db.engine.begin() as conn:
            conn.execute(sa.text("CREATE OR REPLACE SEQUENCE fault_blips"))
        limit = f" AND NEXTVAL(fault_blips) <= {count}"
    odds = "" if chance >= 1.0 else f" AND RAND() < {chance}"
    _recreate_trigger(
        db, f"NEW.status = 'succeeded'{odds}{limit}", "40001", 1213,
        "Deadlock found when trying to get lock; try restarting transaction (injected)",
    )  # fmt: skip


def refuse_success_of(db: Database, job_ids: list[str]) -> None:
    """The database refuses, deterministically, to record a success for these jobs."""
    listed = ", ".join(f"'{j}'" for j in job_ids)
    _recreate_trigger(
        db, f"NEW.status = 'succeeded' AND NEW.job_id IN ({listed})", "45000", 1644,
        "result refused (injected)",
    )  # fmt: skip


def clear_faults(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER IF EXISTS inject_fault"))
