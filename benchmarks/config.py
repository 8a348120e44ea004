"""Sizes of a quick run (a 2-core machine, about twenty minutes) and a full run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    name: str
    engine_images: int  # distinct rendered documents in the engine comparison
    plumbing_jobs: int  # jobs per system in the capacity comparison
    plumbing_concurrency: int  # requests in flight from the load generator
    # closed-loop passes per system; the row is the fastest. Five in the quick run: on these
    # shared cores one system's pass moves by a third from minute to minute, and a ratio of
    # two fastest-of-three readings moved with it
    plumbing_passes: int
    warmup_jobs: int
    api_rates: tuple[int, ...]  # arrival rates of the open-loop API test, requests/s
    api_seconds: float  # duration of each rate step
    operator_resources: int  # OCRServing objects applied at once
    profile_seconds: float  # py-spy window when a target is missed
    engine_passes: int = 2  # passes per side of the engine comparison; read by the fastest
    pods_passes: int = 3  # rounds of the pods suite, one host and one pod pass each
    document_pages: int = 20  # pages of the PDF in the documents comparison
    document_copies: int = 2  # uploads of that PDF, all in flight at once
    drain_timeout_s: float = 300.0
    broker_warmup_jobs: int = 36_000  # through Kafka before the suites (`benchmarks/warm.py`)
    operator_timeout_s: float = 240.0  # longest wait for the many resources to be Ready


QUICK = BenchConfig(
    name="quick",
    engine_images=10,
    plumbing_jobs=3000,
    plumbing_concurrency=64,
    plumbing_passes=5,
    warmup_jobs=100,
    api_rates=(200, 500, 1000),
    api_seconds=8.0,
    operator_resources=50,
    profile_seconds=8.0,
)
FULL = BenchConfig(
    name="full",
    engine_images=40,
    plumbing_jobs=20000,
    plumbing_concurrency=128,
    plumbing_passes=1,
    pods_passes=1,
    warmup_jobs=500,
    api_rates=(200, 500, 1000),
    api_seconds=30.0,
    operator_resources=200,
    profile_seconds=20.0,
    document_copies=4,
    drain_timeout_s=900.0,
    operator_timeout_s=900.0,
)
