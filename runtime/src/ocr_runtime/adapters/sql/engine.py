"""Database engines: one per process, created at start and disposed of at shutdown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
# MySQL protocol: the server status bit set while a transaction is open.
_SERVER_STATUS_IN_TRANS = 0x0001
# A pooled connection idle longer than this is pinged before use. One that was in use a
# moment ago needs no ping: under load that ping was a round trip per transaction.
PING_AFTER_IDLE_S = 1.0
_LAST_USED = "ocr_last_used"


def create_database_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite` or `mysql+aiomysql` URLs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database)
    else:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,  # replaced by _ping_idle_connections
            pool_recycle=1800,  # below MariaDB's wait_timeout on most setups
            pool_reset_on_return=None,  # replaced by _reset_open_transaction
            connect_args={"charset": "utf8mb4"},  # OCR text is any Unicode
        )
        _ping_idle_connections(engine)
    sa.event.listen(engine.sync_engine, "reset", _reset_open_transaction)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's pessimistic disconnect handling, skipped for connections used within
    `PING_AFTER_IDLE_S`: a dead connection (server restarted, idle timeout) is replaced
    before a request sees it, without a ping round trip on every checkout under load."""
    dialect = engine.sync_engine.dialect

    def used_now(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise sa.exc.DisconnectionError() from exc

    sa.event.listen(engine.sync_engine, "connect", used_now)
    sa.event.listen(engine.sync_engine, "checkout", ping_if_idle)
    sa.event.listen(engine.sync_engine, "checkin", used_now)


def _sqlite_engine(url: str, database: str | None) -> AsyncEngine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, pool_reset_on_return=None)
    sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the API) run while the worker writes; busy_timeout makes writers
    # wait for each other instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _reset_open_transaction(dbapi_connection: Any, _record: Any, reset_state: Any) -> None:
    """Roll back at check-in only when a transaction is really open. Writes here always end
    in a commit, so the pool's unconditional rollback was a wasted round trip (an aiosqlite
    thread hop) on every request; an open one (a read, a cancelled write) is still ended, so
    the next user never inherits a stale snapshot."""
    if not reset_state.terminate_only and _in_transaction(dbapi_connection):
        dbapi_connection.rollback()


def _in_transaction(dbapi_connection: Any) -> bool:
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    flag = getattr(driver, "in_transaction", None)  # sqlite3 / aiosqlite
    if isinstance(flag, bool):
        return flag
    status = getattr(driver, "server_status", None)  # aiomysql: from the last OK/EOF packet
    if isinstance(status, int):
        return bool(status & _SERVER_STATUS_IN_TRANS)
    return True  # unknown driver: the safe answer
