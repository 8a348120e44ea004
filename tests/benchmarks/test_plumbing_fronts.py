"""The plumbing suite's systems with two HTTP front processes each: the closed loop reaches
every one of them, and every accepted job finishes."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from benchmarks.baselines import CeleryStack
from benchmarks.runner import measure_closed
from benchmarks.services import Services
from benchmarks.stack import RuntimeStack, StackSpec

from benchmarks import procs

pytestmark = pytest.mark.integration

JOBS = 40


def _jobs_submitted(api_url: str) -> float:
    with urllib.request.urlopen(f"{api_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^ocr_jobs_submitted_total (\S+)$", text, re.MULTILINE)
    assert match is not None, "the API exports ocr_jobs_submitted_total"
    return float(match.group(1))


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_the_closed_loop_submits_to_every_api_process(tmp_path: Path) -> None:
    spec = StackSpec(
        label="test-two-fronts", mode="batched", engine="noop", batch_max_size=8, api_processes=2
    )
    with RuntimeStack(Services.from_env(), spec, tmp_path) as stack:
        assert stack.jobs_url == ",".join(f"{url}/v1/jobs" for url in stack.api_urls)
        assert len(stack.api_urls) == 2
        before = [_jobs_submitted(url) for url in stack.api_urls]
        result = measure_closed(stack, JOBS, 8, timeout=120.0)
        after = [_jobs_submitted(url) for url in stack.api_urls]
    assert result["finished"] == JOBS
    # request i goes to process i modulo two
    assert [a - b for a, b in zip(after, before, strict=True)] == [JOBS / 2, JOBS / 2]


def test_the_celery_baseline_runs_its_front_on_several_uvicorn_workers(tmp_path: Path) -> None:
    with CeleryStack(Services.from_env(), tmp_path, label="test-celery", api_processes=2) as stack:
        # uvicorn's supervisor spawns its workers, all counted in the front's CPU
        tree = procs.process_tree(stack.processes["api"].pid)
        assert sum("spawn_main" in _cmdline(pid) for pid in tree) == 2
        result = measure_closed(stack, JOBS, 8, timeout=120.0)
    assert result["submit"]["statuses"] == {"202": JOBS}
    assert result["statuses"] == {"succeeded": JOBS}
