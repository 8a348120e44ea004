"""Ports for servers that tests start: the benchmark harness's, which keeps them out of the
range the kernel picks connections' source ports from."""

from __future__ import annotations

from benchmarks.procs import free_port

__all__ = ["free_port"]
