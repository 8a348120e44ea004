"""Errors are transient or permanent by cause: what the MySQL server says (its error number),
what the filesystem says (errno), whether the broker calls it retriable; and backoffs stay
finite however long a transient failure lasts."""

from __future__ import annotations

import errno

import pymysql
import pytest
import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from ocr_runtime.adapters.failures import is_conflict, is_transient
from ocr_runtime.application import retry_delay_s
from ocr_runtime.worker import RetryPolicy


def mysql(code: int, text: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError(
        "UPDATE jobs", {}, pymysql.err.OperationalError(code, text)
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (mysql(1213, "Deadlock found when trying to get lock"), True),
        (mysql(1205, "Lock wait timeout exceeded"), True),
        (mysql(2013, "Lost connection to MySQL server during query"), True),
        (mysql(2006, "MySQL server has gone away"), True),
        (mysql(1927, "Connection was killed"), True),
        (mysql(1644, "result refused"), False),  # SIGNAL in a trigger: says it again
        (mysql(1406, "Data too long for column 'result'"), False),
        (mysql(1153, "Got a packet bigger than 'max_allowed_packet' bytes"), False),
        (sqlalchemy.exc.InterfaceError("SELECT 1", {}, pymysql.err.InterfaceError(0, "")), True),
        (PermissionError(errno.EACCES, "Permission denied", "/blobs/ab"), False),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/blobs/ab/ab12"), False),
        (OSError(errno.EROFS, "Read-only file system"), False),
        (OSError(errno.ESTALE, "Stale file handle"), True),
        (ConnectionResetError(errno.ECONNRESET, "reset"), True),
        (KafkaConnectionError("no broker"), True),
        (MessageSizeTooLargeError(), False),
        (ValueError("bug"), False),
    ],
)
def test_errors_are_classified_by_cause(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_backoff_exponents_are_capped() -> None:
    policy = RetryPolicy(max_attempts=3, first_backoff_s=0.2, max_backoff_s=10.0)
    assert policy.backoff(100_000) == 10.0  # 2 ** 99_999 would not fit a float
    assert retry_delay_s(100_000, 200) < 1e6


@pytest.mark.parametrize(
    ("error", "conflict"),
    [
        (mysql(1213, "Deadlock found when trying to get lock"), True),
        (mysql(1205, "Lock wait timeout exceeded"), True),
        (mysql(2013, "Lost connection to MySQL server during query"), False),  # away, not a race
        (mysql(1644, "result refused"), False),
        (ConnectionResetError(errno.ECONNRESET, "reset"), False),
    ],
)
def test_lost_lock_races_are_conflicts(error: BaseException, conflict: bool) -> None:
    assert is_conflict(error) is conflict
    assert not conflict or is_transient(error)  # a conflict is always transient too
