"""Retry policy shared by the inference worker and the writer.

Two kinds of failure: *transient* ones (the database, the broker or the network is away) are
retried without limit with capped exponential backoff, because no job is at fault and giving
up would lose work; any other failure counts against the job's attempts and, after
`max_attempts`, the job is failed and dead-lettered.

A *conflict* (a lost lock race: deadlock, lock wait timeout) is transient too, but its odds
grow with the rows a transaction touches: a caller that can split its work asks to hear
about conflicts that persist (`ConflictsPersistError`) instead of retrying the same large
transaction forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from ocr_runtime.application.errors import ConflictError, TransientError

log = logging.getLogger(__name__)

R = TypeVar("R")
_MAX_EXPONENT = 32
# Lost lock races in a row before a caller that can split its work does (one row retries on).
CONFLICTS_BEFORE_SPLIT = 3


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    CONFLICT = "conflict"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    first_backoff_s: float
    max_backoff_s: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): doubled each time, capped. The
        exponent is capped too: transient retries run without limit, and 2 ** 1100 is not
        a float."""
        exponent = min(max(0, attempt - 1), _MAX_EXPONENT)
        return float(min(self.max_backoff_s, self.first_backoff_s * 2**exponent))

    @staticmethod
    def classify(exc: BaseException) -> FailureKind:
        """By the type adapters raise at their boundary; the standard library's own
        connection errors and timeouts (our sockets, `asyncio.wait_for`) are transient too."""
        if isinstance(exc, ConflictError):
            return FailureKind.CONFLICT
        if isinstance(exc, TransientError | ConnectionError | TimeoutError):
            return FailureKind.TRANSIENT
        return FailureKind.PERMANENT


class AttemptsExhaustedError(Exception):
    """The work failed `max_attempts` times with permanent errors; `__cause__` is the last."""


class ConflictsPersistError(Exception):
    """The work lost `max_conflicts` lock races in a row; smaller pieces of it are likelier
    to pass. `__cause__` is the last conflict."""


def _check_conflicts(
    conflicts: int, max_conflicts: int | None, what: str, exc: BaseException
) -> None:
    if max_conflicts is not None and conflicts >= max_conflicts:
        raise ConflictsPersistError(f"{what}: {conflicts} conflicts in a row") from exc


async def retry(
    work: Callable[[], Awaitable[R]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: Callable[[], None] | None = None,
    max_conflicts: int | None = None,
) -> R:
    """Run `work` until it succeeds. Transient errors retry forever (cancellation ends it);
    `max_attempts` permanent errors raise AttemptsExhaustedError; `max_conflicts` conflicts
    in a row (when given) raise ConflictsPersistError."""
    permanent = 0
    transient = 0
    conflicts = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            kind = policy.classify(exc)
            conflicts = conflicts + 1 if kind is FailureKind.CONFLICT else 0
            if kind is not FailureKind.PERMANENT:
                _check_conflicts(conflicts, max_conflicts, what, exc)
                transient += 1
                delay = policy.backoff(transient)
                log.warning("%s: transient error, retrying in %.2fs: %r", what, delay, exc)
            else:
                permanent += 1
                if permanent >= policy.max_attempts:
                    raise AttemptsExhaustedError(f"{what}: {permanent} attempts failed") from exc
                delay = policy.backoff(permanent)
                log.warning(
                    "%s: attempt %d/%d failed, retrying in %.2fs: %r",
                    what, permanent, policy.max_attempts, delay, exc,
                )  # fmt: skip
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(delay)


async def retry_transient(
    work: Callable[[], Awaitable[R]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: Callable[[], None] | None = None,
    max_conflicts: int | None = None,
) -> R:
    """Run `work` until it succeeds, retrying only transient errors (without limit: no job
    is at fault); the first permanent error is raised to the caller, which knows what to
    isolate, and so is ConflictsPersistError after `max_conflicts` conflicts in a row."""
    transient = 0
    conflicts = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            kind = policy.classify(exc)
            if kind is FailureKind.PERMANENT:
                raise
            conflicts = conflicts + 1 if kind is FailureKind.CONFLICT else 0
            _check_conflicts(conflicts, max_conflicts, what, exc)
            transient += 1
            delay = policy.backoff(transient)
            log.warning("%s: transient error, retrying in %.2fs: %r", what, delay, exc)
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(delay)
