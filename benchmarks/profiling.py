"""Sampling profiles of running processes with py-spy, summarised to the functions that took
the time: what the summary quotes when a target is missed."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.procs import venv_bin


@dataclass
class Recording:
    name: str
    popen: subprocess.Popen[bytes]
    output: Path


def start_recording(name: str, pid: int, seconds: float, out_dir: Path) -> Recording:
    """py-spy samples `pid` (and its subprocesses) for `seconds` without pausing it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.pyspy.txt"
    argv = [
        venv_bin("py-spy"),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "67",
        "--format",
        "raw",
        "--nonblocking",
        "--subprocesses",
        "--output",
        str(output),
    ]
    popen = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Recording(name=name, popen=popen, output=output)


# Frames on every stack of an asyncio or threaded process: they say nothing about the cost.
_SCAFFOLDING = {
    "<module>",
    "main",
    "run",
    "asyncio_run",
    "uvloop_run",
    "Runner.run",
    "Server.run",
    "Server.serve",
    "BaseEventLoop.run_forever",
    "BaseEventLoop.run_until_complete",
    "BaseEventLoop._run_once",
    "Handle._run",
    "Thread._bootstrap",
    "Thread._bootstrap_inner",
    "Thread.run",
    "_worker",
    "_run_module_as_main",
    "_run_code",
    "_compat_run",
}


# Our code below the composition root: where the project's own functions spend the time.
_OURS = (
    "ocr_runtime.api",
    "ocr_runtime.application",
    "ocr_runtime.adapters",
    "ocr_runtime.worker",
    "ocr_runtime.domain",
    "ocr_runtime.core",
    "ocr_operator.",
)


def _frame_name(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `func (module.py)`; line numbers vary per sample."""
    func, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0].rstrip(")")
    return f"{func} ({module})" if module else func


def _package(frame: str) -> str:
    """`func (sqlalchemy/sql/compiler.py:12)` -> `sqlalchemy`; our own code by subpackage
    (`ocr_runtime.worker`), so the summary says which layer spends the time."""
    where = frame.rpartition(" (")[2].split(":", 1)[0]
    parts = where.split("/")
    if parts[0] in ("ocr_runtime", "ocr_operator", "benchmarks") and len(parts) > 2:
        return f"{parts[0]}.{parts[1]}"
    return parts[0].removesuffix(".py") or "?"


def summarise(path: Path, top: int = 8) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()  # inclusive, our own functions only
    own_pkg: Counter[str] = Counter()
    inclusive_pkg: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"samples": 0, "error": f"no profile at {path}"}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not raw:
            continue
        frames = [_frame_name(frame) for frame in raw]
        own_pkg[_package(raw[-1])] += count
        for package in {_package(frame) for frame in raw}:
            inclusive_pkg[package] += count
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            if name.split(" (", 1)[0] not in _SCAFFOLDING:
                inclusive[name] += count
        for name in {_frame_name(f) for f in raw if _package(f).startswith(_OURS)}:
            ours[name] += count

    def share(counter: Counter[str], limit: int = top) -> list[list[Any]]:
        return [[name, round(100.0 * n / total, 1)] for name, n in counter.most_common(limit)]

    return {
        "samples": total,
        "self_pct": share(own),
        "inclusive_pct": share(inclusive),
        "ours_inclusive_pct": share(ours, top + 4),
        "self_by_package_pct": share(own_pkg),
        # a package on every stack (the event loop, the server) says nothing
        "inclusive_by_package_pct": [row for row in share(inclusive_pkg, top + 6) if row[1] < 99.0],
    }


def finish(recordings: list[Recording], timeout: float = 60.0) -> dict[str, Any]:
    results = {}
    for rec in recordings:
        try:
            rec.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            rec.popen.kill()
        results[rec.name] = summarise(rec.output)
    return results
