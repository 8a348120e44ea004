"""State shared by the suites of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import profiling
from benchmarks.config import BenchConfig
from benchmarks.procs import RssSampler
from benchmarks.runner import measure_closed
from benchmarks.services import Services
from benchmarks.stack import System


@dataclass
class Target:
    """One goal of the issue, and whether this run met it."""

    name: str
    goal: str
    value: float
    met: bool
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "value": self.value,
            "met": self.met,
            "unit": self.unit,
        }


@dataclass
class Ctx:
    config: BenchConfig
    services: Services
    results_dir: Path
    profile: bool = True
    device: str = "cpu"  # cpu | gpu: where the engine comparison runs inference
    sampler: RssSampler = field(default_factory=RssSampler)
    memory: dict[str, int] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.results_dir / "logs"

    def watch(self, system: System) -> None:
        self.sampler.processes.extend(system.processes.values())

    def remember_memory(self, system: System) -> None:
        """Peak RSS of each process of `system`, kept for the memory section."""
        for name, proc in system.processes.items():
            proc.sample_rss()
            key = f"{system.label}/{name}"
            self.memory[key] = max(self.memory.get(key, 0), proc.peak_rss)
            if proc in self.sampler.processes:
                self.sampler.processes.remove(proc)
        for name, rss in system.ready_rss.items():
            self.memory[f"{system.label}/{name} (ready, idle)"] = rss

    def profile_closed(
        self, system: System, count: int, concurrency: int, images: Path | None = None
    ) -> dict[str, Any]:
        """Repeat a closed-loop pass with py-spy on every process of `system`; returns the
        per-process summaries (the pass's own numbers are kept, marked as profiled)."""
        out_dir = self.results_dir / "profiles" / system.label
        seconds = self.config.profile_seconds
        recordings = [
            profiling.start_recording(name, pid, seconds, out_dir)
            for name, pid in system.python_pids().items()
        ]
        run = measure_closed(system, count, concurrency, self.config.drain_timeout_s, images)
        return {
            "run_while_profiled": {"jobs_per_s": run["jobs_per_s"], "cpu_cores": run["cpu_cores"]},
            "processes": profiling.finish(recordings),
        }
