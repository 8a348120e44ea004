"""Alembic migrations of the runtime's database. Run by `ocr-runtime migrate` and at the start
of the all-in-one server; the same scripts serve SQLite and MySQL/MariaDB."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPT_LOCATION = Path(__file__).parent


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Blocking; call outside a running event loop (it runs its own)."""
    config = _config()
    # Through attributes, not the ini options: passwords may contain '%'.
    config.attributes["database_url"] = database_url
    command.upgrade(config, revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate through an existing async engine, from inside an event loop."""
    config = _config()
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_on_connection, config, revision)


def _upgrade_on_connection(connection: object, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
