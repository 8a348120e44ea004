"""Use cases that read jobs: get one, or wait for one to finish."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator

from ocr_runtime.application.errors import JobNotFound, WaitTimeout
from ocr_runtime.application.ports import JobRepository
from ocr_runtime.domain import Job

_FIRST_POLL_S = 0.01
_MAX_POLL_S = 0.25
# With completion signals the database is still read now and then: a signal from another
# process never arrives, and a lost one must not cost the whole timeout.
_SIGNALLED_POLL_S = 1.0


class JobCompletions:
    """In-process completion signals: whoever records outcomes announces the finished jobs,
    so a waiting request wakes at once instead of polling (the all-in-one server)."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def notify(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            for event in self._waiters.get(job_id, ()):
                event.set()

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiters.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[job_id]


async def get_job(repository: JobRepository, job_id: str) -> Job:
    job = await repository.get(job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


async def wait_for_job(
    repository: JobRepository,
    job_id: str,
    timeout_s: float,
    completions: JobCompletions | None = None,
) -> Job:
    """Wait until the job is terminal; raise `WaitTimeout` after `timeout_s`. Without
    completion signals the poll interval doubles from 10 ms to 250 ms: quick answers for fast
    jobs, little database load for slow ones."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = _FIRST_POLL_S
    # Watch before the first read, so a completion between read and wait is not missed.
    with completions.watch(job_id) if completions else contextlib.nullcontext() as signal:
        while True:
            job = await get_job(repository, job_id)
            if job.status.is_terminal:
                return job
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeout(job_id, timeout_s)
            if signal is None:
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, _MAX_POLL_S)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(signal.wait(), min(_SIGNALLED_POLL_S, remaining))
                signal.clear()
