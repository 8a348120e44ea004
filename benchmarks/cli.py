"""`python -m benchmarks --quick|--full [--only engine,plumbing,api,operator,documents,pods]`.

Runs the suites in order, keeps going when one fails (its error is recorded), writes
`bench-results/<stamp>-<mode>.json` plus `bench-results/latest.json`, and renders
`docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    api_bench,
    documents_bench,
    engine_bench,
    machine,
    operator_bench,
    plumbing_bench,
    pods_bench,
    report,
    warm,
)
from benchmarks.config import FULL, QUICK
from benchmarks.context import Ctx
from benchmarks.services import ServiceMissingError, Services

SUITES: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "engine": engine_bench.run,
    "plumbing": plumbing_bench.run,
    "api": api_bench.run,
    "operator": operator_bench.run,
    "documents": documents_bench.run,
    "pods": pods_bench.run,
}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="2-core sizes (default)")
    size.add_argument("--full", action="store_true", help="bigger sizes for bigger machines")
    parser.add_argument(
        "--only", default=",".join(SUITES), help="comma-separated suites to run (default: all)"
    )
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the py-spy pass that follows a missed target",
    )
    parser.add_argument(
        "--no-broker-warmup",
        action="store_true",
        help="measure without first warming Kafka's JIT (`benchmarks/warm.py`): for a broker "
        "that has just carried load",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "gpu"],
        default="cpu",
        help="run the engine comparison on this device (gpu: CUDA provider)",
    )
    parser.add_argument("--results-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--summary", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render the summary from <results-dir>/latest.json (after editing the notes) "
        "without running anything",
    )
    parser.add_argument(
        "--notes",
        type=Path,
        default=Path("benchmarks/NOTES.md"),
        help="hand-written analysis appended to the summary, if present",
    )
    return parser.parse_args(argv)


def _run_suite(name: str, ctx: Ctx) -> dict[str, Any]:
    print(f"[bench] {name} ...", flush=True)
    started = time.monotonic()
    try:
        result = SUITES[name](ctx)
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    result["duration_s"] = round(time.monotonic() - started, 1)
    print(f"[bench] {name} done in {result['duration_s']} s", flush=True)
    return result


def _warm_broker(ctx: Ctx) -> dict[str, Any]:
    print("[bench] broker warm-up ...", flush=True)
    try:
        return warm.run(ctx, ctx.config.broker_warmup_jobs)
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.render_only:
        latest = json.loads((args.results_dir / "latest.json").read_text())
        report.write(latest, args.summary, args.notes)
        print(f"[bench] re-rendered {args.summary}")
        return 0
    config = FULL if args.full else QUICK
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(SUITES)}")
        return 2
    try:
        services = Services.from_env()
    except ServiceMissingError as exc:
        print(f"[bench] {exc}")
        return 2
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine.describe(args.device),
        "config": vars(config),
        "suites": {},
    }
    ctx = Ctx(
        config=config,
        services=services,
        results_dir=args.results_dir,
        profile=not args.no_profile,
        device=args.device,
    )
    with ctx.sampler:
        if not args.no_broker_warmup and warm.USES_BROKER.intersection(names):
            results["broker_warmup"] = _warm_broker(ctx)
        for name in names:
            results["suites"][name] = _run_suite(name, ctx)
    results["memory"] = ctx.memory
    results["duration_s"] = round(time.monotonic() - started, 1)
    _save(results, args.results_dir, config.name)
    report.write(results, args.summary, args.notes)
    print(f"[bench] wrote {args.summary} in {results['duration_s'] / 60:.1f} min")
    return 0


def _save(results: dict[str, Any], results_dir: Path, mode: str) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2, default=str)
    (results_dir / f"{stamp}-{mode}.json").write_text(text)
    (results_dir / "latest.json").write_text(text)
