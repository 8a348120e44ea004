"""Retry policy shared by the inference worker and the writer.

Two kinds of failure: *transient* ones (the database, the broker or the network is away) are
retried without limit with capped exponential backoff, because no job is at fault and giving
up would lose work; any other failure counts against the job's attempts and, after
`max_attempts`, the job is failed and dead-lettered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

log = logging.getLogger(__name__)

R = TypeVar("R")
_MAX_EXPONENT = 32

# Decides whether an exception is transient; the composition root supplies one that knows
# the database and Kafka client error types.
TransientTest = Callable[[BaseException], bool]


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


def default_transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError | TimeoutError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    first_backoff_s: float
    max_backoff_s: float = 10.0
    is_transient: TransientTest = default_transient

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): doubled each time, capped. The
        exponent is capped too: transient retries run without limit, and 2 ** 1100 is not
        a float."""
        exponent = min(max(0, attempt - 1), _MAX_EXPONENT)
        return float(min(self.max_backoff_s, self.first_backoff_s * 2**exponent))

    def classify(self, exc: BaseException) -> FailureKind:
        return FailureKind.TRANSIENT if self.is_transient(exc) else FailureKind.PERMANENT


class AttemptsExhaustedError(Exception):
    """The work failed `max_attempts` times with permanent errors; `__cause__` is the last."""


async def retry(
    work: Callable[[], Awaitable[R]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: Callable[[], None] | None = None,
) -> R:
    """Run `work` until it succeeds. Transient errors retry forever (cancellation ends it);
    `max_attempts` permanent errors raise AttemptsExhaustedError."""
    permanent = 0
    transient = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            if policy.classify(exc) is FailureKind.TRANSIENT:
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
) -> R:
    """Run `work` until it succeeds, retrying only transient errors (without limit: no job
    is at fault); the first permanent error is raised to the caller, which knows what to
    isolate."""
    transient = 0
    while True:
        try:
            return await work()
        except Exception as exc:
            if policy.classify(exc) is FailureKind.PERMANENT:
                raise
            transient += 1
            delay = policy.backoff(transient)
            log.warning("%s: transient error, retrying in %.2fs: %r", what, delay, exc)
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(delay)
