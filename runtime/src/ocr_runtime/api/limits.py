"""Bounded memory in the API: at most `slots` submissions hold an upload in memory and decode
it at once; an excess request waits briefly for a slot, then gets 503 with Retry-After. The
bound and the decode pool follow the CPUs the container may use, not the host's cores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from ocr_runtime.api.errors import RetryLater

# Submissions in flight per CPU: uploads mostly wait on the network, decodes on the CPU.
SLOTS_PER_CPU = 8
SLOT_WAIT_S = 2.0
RETRY_AFTER_S = 1


class Overloaded(RetryLater):
    code = "overloaded"
    http_status = 503


class SubmissionSlots:
    def __init__(self, slots: int, wait_s: float = SLOT_WAIT_S) -> None:
        self.capacity = slots
        self._wait_s = wait_s
        self._semaphore = asyncio.Semaphore(slots)
        self.in_use = 0

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._semaphore.locked():
            try:
                await asyncio.wait_for(self._semaphore.acquire(), self._wait_s)
            except TimeoutError:
                raise Overloaded(
                    f"{self.capacity} uploads are in progress; retry shortly", RETRY_AFTER_S
                ) from None
        else:  # a free slot is taken at once: no task and timer as wait_for would make
            await self._semaphore.acquire()
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
            self._semaphore.release()


def decode_pool(cpus: int) -> ThreadPoolExecutor:
    """Threads that decode uploads: one per usable CPU (decoding holds the CPU, more threads
    only add memory)."""
    return ThreadPoolExecutor(max_workers=max(1, cpus), thread_name_prefix="decode")
