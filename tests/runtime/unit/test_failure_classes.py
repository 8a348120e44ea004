"""Errors are transient or permanent by cause: what the MySQL server says (its error number),
what the filesystem says (errno), whether the broker calls it retriable; and backoffs stay
finite however long a transient failure lasts."""

from __future__ import annotations

import errno

import pymysql
import pytest
import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from ocr_runtime.adapters.failures import boundary, is_conflict, is_transient
from ocr_runtime.application import QueueFull, retry_delay_s
from ocr_runtime.application.errors import ConflictError, PermanentError, TransientError
from ocr_runtime.worker import RetryPolicy
from ocr_runtime.worker.retry import FailureKind


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


@boundary
class FlakyStore:
    """An adapter whose driver fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def put(self, data: bytes) -> str:
        raise self.error

    async def _private(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "typed_as", "kind"),
    [
        (mysql(1213, "Deadlock found when trying to get lock"), ConflictError,
         FailureKind.CONFLICT),
        (mysql(2013, "Lost connection to MySQL server during query"), TransientError,
         FailureKind.TRANSIENT),
        (KafkaConnectionError("no broker"), TransientError, FailureKind.TRANSIENT),
        (mysql(1406, "Data too long for column 'result'"), PermanentError,
         FailureKind.PERMANENT),
        (PermissionError(errno.EACCES, "Permission denied", "/blobs/ab"), PermanentError,
         FailureKind.PERMANENT),
        (QueueFull("the queue is full"), QueueFull, FailureKind.PERMANENT),
    ],
)  # fmt: skip
async def test_adapters_raise_typed_errors_that_the_one_retry_policy_reads(
    error: Exception, typed_as: type[Exception], kind: FailureKind
) -> None:
    """Callers see what to do, never the driver's type; the driver's error is the cause."""
    with pytest.raises(typed_as) as caught:
        await FlakyStore(error).put(b"x")
    assert caught.value is error or caught.value.__cause__ is error
    assert RetryPolicy.classify(caught.value) is kind
    # The classifier reads typed errors too (startup loops use it on adapter calls).
    assert is_transient(caught.value) is (kind is not FailureKind.PERMANENT)


async def test_private_methods_are_left_alone() -> None:
    with pytest.raises(KafkaConnectionError):
        await FlakyStore(KafkaConnectionError("no broker"))._private()
