"""Pooled MariaDB connections: one that died while idle is replaced before anyone uses it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ocr_runtime.adapters.sql import create_database_engine
from ocr_runtime.adapters.sql import engine as engine_module

pytestmark = pytest.mark.integration


async def test_connection_killed_while_idle_is_replaced(
    fresh_mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_database_engine(fresh_mysql_url, pool_size=1)
    admin = create_database_engine(fresh_mysql_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(sa.text("SELECT CONNECTION_ID()"))).scalar_one()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f"KILL {int(first)}"))
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)  # idle long enough
        async with engine.connect() as conn:
            second = (await conn.execute(sa.text("SELECT CONNECTION_ID()"))).scalar_one()
        assert second != first
    finally:
        await engine.dispose()
        await admin.dispose()
