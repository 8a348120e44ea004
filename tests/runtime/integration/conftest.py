"""Databases for the runtime's integration tests: a fresh SQLite file and a fresh MariaDB
database per test session, both migrated with the real Alembic scripts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ocr_runtime.adapters.sql import create_database_engine
from ocr_runtime.migrations import upgrade_database


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(statement)
            await conn.commit()
    except Exception as exc:
        pytest.fail(f"MariaDB at {make_url(url).host}:{make_url(url).port} unusable: {exc}")
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def fresh_mysql_url(mysql_url: str) -> Iterator[str]:
    name = f"ocr_rt_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(mysql_url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = make_url(mysql_url).set(database=name).render_as_string(hide_password=False)
    yield url
    asyncio.run(_admin(mysql_url, f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(scope="session")
def fresh_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'ocr.db'}"


@pytest.fixture(scope="session", params=["sqlite", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> str:
    url = str(
        request.getfixturevalue(f"fresh_{'mysql' if request.param == 'mariadb' else 'sqlite'}_url")
    )
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_database_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()
