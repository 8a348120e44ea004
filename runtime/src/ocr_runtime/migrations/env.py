"""Alembic environment: async engines for both SQLite (aiosqlite) and MySQL (aiomysql)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ocr_runtime.adapters.sql.engine import create_database_engine
from ocr_runtime.adapters.sql.tables import metadata

config = context.config

# MySQL/MariaDB DDL commits implicitly, so a transaction cannot keep two migrations apart
# (two stacks on one database, or two image versions rolling at once): a named lock does.
# The second one waits, then finds the schema at head and has nothing left to do.
LOCK_NAME = "ocr_runtime_migrations"
LOCK_TIMEOUT_S = 600


def _migrate(connection: Connection) -> None:
    if connection.dialect.name != "mysql":
        _run(connection)
        return
    got = connection.execute(
        text("SELECT GET_LOCK(:name, :timeout)"), {"name": LOCK_NAME, "timeout": LOCK_TIMEOUT_S}
    ).scalar()
    if got != 1:
        raise RuntimeError(f"another migration held the lock {LOCK_NAME} for {LOCK_TIMEOUT_S} s")
    try:
        _run(connection)
    finally:
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_url(url: str) -> None:
    engine = create_database_engine(url, pool_size=1)  # also creates SQLite's folder
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    asyncio.run(_migrate_url(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run()
