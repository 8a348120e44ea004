"""Benchmarks of the OCR serving stack: `uv run --frozen python -m benchmarks --quick|--full`.

Each comparison runs side by side in one invocation and is reported as a ratio, because the
machines these run on are noisy. Results go to `bench-results/` (JSON) and
`docs/benchmarks.md` (summary). Nothing here is a test: no assertion fails on a number.
"""
