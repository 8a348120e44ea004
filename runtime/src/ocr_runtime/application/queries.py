"""Use cases that read jobs: get one, or wait for one to finish."""

from __future__ import annotations

import asyncio

from ocr_runtime.application.errors import JobNotFound, WaitTimeout
from ocr_runtime.application.ports import JobRepository
from ocr_runtime.domain import Job

_FIRST_POLL_S = 0.01
_MAX_POLL_S = 0.25


async def get_job(repository: JobRepository, job_id: str) -> Job:
    job = await repository.get(job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


async def wait_for_job(repository: JobRepository, job_id: str, timeout_s: float) -> Job:
    """Poll until the job is terminal. The poll interval doubles from 10 ms to 250 ms: quick
    answers for fast jobs, little database load for slow ones. Raises `WaitTimeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = _FIRST_POLL_S
    while True:
        job = await get_job(repository, job_id)
        if job.status.is_terminal:
            return job
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise WaitTimeout(job_id, timeout_s)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_POLL_S)
