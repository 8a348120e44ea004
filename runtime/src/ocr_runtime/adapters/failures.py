"""Which failures of the outside world are transient, decided by their cause rather than their
Python type: MySQL reports a deadlock and a refused value through the same exception class
(`OperationalError`), and a filesystem reports a dropped NFS mount and a permission error as
the same `OSError`. Transient failures are retried without limit (no job is at fault); any
other failure is permanent and is charged to the job, or isolated, by the caller.

`boundary` applies the decision where it belongs: every public coroutine method of an
adapter class raises `TransientError` / `ConflictError` / `PermanentError` instead of the
library's exception, so the layers above reason about what to do, not about drivers."""

from __future__ import annotations

import errno
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from ocr_runtime.application.errors import (
    ConflictError,
    InfrastructureError,
    PermanentError,
    TransientError,
)
from ocr_runtime.domain import OcrError

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type[Any])

# MySQL / MariaDB error numbers that mean "try again": the server or the connection went
# away, or the statement lost a lock race. Everything else the server says is about the
# statement itself (a refused value, a constraint, a syntax error) and will say it again.
MYSQL_TRANSIENT = frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1053,  # ER_SERVER_SHUTDOWN: server shutdown in progress
        1158, 1159, 1160, 1161,  # ER_NET_READ_ERROR ... ER_NET_WRITE_INTERRUPTED
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
        1317,  # ER_QUERY_INTERRUPTED (KILL QUERY, server shutting down)
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        1969,  # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
        2002, 2003,  # CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR: cannot connect
        2006, 2013, 2055,  # CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED
        3024,  # ER_QUERY_TIMEOUT (MySQL max_execution_time)
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8: idle connection closed)
    }
)  # fmt: skip
# Of those, the lost lock races: their odds grow with the rows one transaction locks.
MYSQL_CONFLICT = frozenset({1205, 1213})
# SQLite: another connection holds the lock past busy_timeout.
_SQLITE_TRANSIENT = ("database is locked", "database table is locked")
# Filesystem errors that heal without anyone changing the configuration: a network mount
# hiccup, a full disk being cleaned, a busy file. Permission errors, missing folders and
# read-only mounts do not heal by retrying.
_OS_TRANSIENT = frozenset(
    {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ENOSPC, errno.ESTALE, errno.EINTR}
)


def mysql_error_code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_transient(exc: BaseException) -> bool:
    """Infrastructure away (database, broker, network, storage): retry without counting."""
    if isinstance(exc, InfrastructureError):
        return isinstance(exc, TransientError)
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return _database_transient(exc)
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # pool exhausted: others hold it
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KafkaConnectionError | KafkaTimeoutError)
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _OS_TRANSIENT
    return False


def is_conflict(exc: BaseException) -> bool:
    """A transaction that lost a lock race (deadlock, lock wait timeout): worth retrying,
    and likelier to pass when it touches fewer rows."""
    if isinstance(exc, InfrastructureError):
        return isinstance(exc, ConflictError)
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and mysql_error_code(exc) in MYSQL_CONFLICT


def _database_transient(exc: sqlalchemy.exc.DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc, sqlalchemy.exc.InterfaceError):
        return True  # the connection broke under the driver (pymysql: InterfaceError(0, ''))
    code = mysql_error_code(exc)
    if code is not None:
        return code in MYSQL_TRANSIENT
    text = str(exc.orig).lower()
    return any(marker in text for marker in _SQLITE_TRANSIENT)


def typed(exc: Exception) -> Exception:
    """The error a caller acts on: ours unchanged (already typed, or a domain error such as a
    full queue), anything else as transient, conflict or permanent by its cause."""
    if isinstance(exc, InfrastructureError | OcrError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    if is_conflict(exc):
        return ConflictError(text)
    if is_transient(exc):
        return TransientError(text)
    return PermanentError(text)


def at_boundary(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            error = typed(exc)
            if error is exc:
                raise
            raise error from exc

    return translated


def boundary(cls: C) -> C:
    """Class decorator: every public coroutine method raises typed errors (see `typed`)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, at_boundary(member))
    return cls
