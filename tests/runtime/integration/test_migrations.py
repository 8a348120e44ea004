from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ocr_runtime.adapters.sql import metadata
from ocr_runtime.migrations import upgrade_database, upgrade_engine

pytestmark = pytest.mark.integration


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrations_match_the_tables_and_rerun_cleanly(
    engine: AsyncEngine, database_url: str
) -> None:
    await upgrade_engine(engine)  # already at head: a no-op
    await asyncio.to_thread(upgrade_database, database_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar()
    assert diff == []
    assert version == "0004"
