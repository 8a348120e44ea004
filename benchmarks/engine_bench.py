"""Suite 1: images/s of the bare engine library versus the same images through our worker
(HTTP -> MariaDB -> Kafka -> worker -> MariaDB), in standard and in batched mode, and through
Ray Serve's `@serve.batch` on the same engine (`benchmarks/ray_baseline`)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.baselines import RayServeStack
from benchmarks.context import Ctx, Target
from benchmarks.images import describe, write_documents
from benchmarks.procs import ProcessFailedError
from benchmarks.runner import fastest_pass, measure_closed, warm_up
from benchmarks.stack import RuntimeStack, StackSpec, System
from benchmarks.stats import ratio

STANDARD_GOAL = 0.95
BATCHED_GOAL = 1.0
RAY_GOAL = 1.0  # our batched images/s over Ray Serve's, at an equal or better p95
RAY = "Ray Serve, batched"
# As Ray's batching guide advises: a power of two (our batched mode's default size), and a
# wait far below what is left of the latency budget after one batch's compute (seconds).
RAY_ENGINE_BATCH = 8
RAY_ENGINE_WAIT_S = 0.02


def bare_run(source: list[str], log: Path, device: str) -> dict[str, Any]:
    """`benchmarks.bare_engine` in its own process; `source`: `--images DIR` or `--pdf ...`."""
    argv = [sys.executable, "-m", "benchmarks.bare_engine", *source, "--device", device]
    with open(log, "ab") as stderr:
        out = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=stderr,
            timeout=900,
            check=False,
        )
    if out.returncode != 0:
        raise RuntimeError(f"bare engine run failed ({out.returncode}); see {log}")
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    print(f"[bench]   bare engine: {result['images_per_s']} images/s", flush=True)
    return result


def _through_worker(ctx: Ctx, mode: str, image_dir: Path, min_rate: float) -> dict[str, Any]:
    """`min_rate`: below it the pass is repeated under the profiler."""
    spec = StackSpec(
        label=f"engine-{mode}", mode=mode, engine="onnx", extra_env={"OCR_DEVICE": ctx.device}
    )
    result = _through(ctx, RuntimeStack(ctx.services, spec, ctx.log_dir), image_dir, min_rate)
    result["settings"] = spec.settings()
    return result


def _through_ray(ctx: Ctx, image_dir: Path) -> dict[str, Any]:
    stack = RayServeStack(
        ctx.services,
        ctx.log_dir,
        label="engine-ray",
        engine="onnx",
        max_batch_size=RAY_ENGINE_BATCH,
        batch_wait_s=RAY_ENGINE_WAIT_S,
        extra_env={"OCR_DEVICE": ctx.device},
    )
    result = _through(ctx, stack, image_dir, 0.0)
    result["settings"] = stack.settings()
    result["processes_left_after_stop"] = len(stack.leftover)
    return result


def _through(ctx: Ctx, system: System, image_dir: Path, min_rate: float) -> dict[str, Any]:
    """The same images, all at once, through `system`, in the config's passes; the fastest
    pass's rate, latency and recognised text, every pass's rate beside them."""
    count = len(list(image_dir.glob("*.png")))

    def one_pass() -> dict[str, Any]:
        since = system.cutoff()
        result = measure_closed(system, count, count, ctx.config.drain_timeout_s, image_dir)
        result["texts"] = system.table.result_texts(since)
        return result

    with system:
        ctx.watch(system)
        warm_up(system, 2)
        result = fastest_pass(one_pass, ctx.config.engine_passes)
        result["startup_s"] = getattr(system, "startup_s", {})
        result["images_per_s"] = result["jobs_per_s"]
        print(f"[bench]   engine {system.label}: {result['images_per_s']} images/s "
              f"(passes {result['passes_jobs_per_s']})", flush=True)  # fmt: skip
        if ctx.profile and result["images_per_s"] < min_rate:
            result["profile"] = ctx.profile_closed(system, count, count, image_dir)
        ctx.remember_memory(system)
    return result


def text_agreement(bare: list[str], worker: list[str]) -> float:
    """Share of the bare engine's lines that the worker recognised identically: the same
    work was done, and batching did not change what the model reads."""
    if not bare:
        return math.nan
    common = Counter(bare) & Counter(worker)
    return round(sum(common.values()) / len(bare), 4)


def run(ctx: Ctx) -> dict[str, Any]:
    image_dir = ctx.results_dir / "images"
    paths = write_documents(ctx.config.engine_images, image_dir)
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    bare_log = ctx.log_dir / "bare-engine.log"
    # bare, standard, batched, Ray Serve, bare again: the bare runs bracket the others, so
    # drift in the machine's speed during the run shows up as a gap between them. Each side
    # is read by its fastest pass, the bare library by its fastest run.
    bare = [bare_run(["--images", str(image_dir)], bare_log, ctx.device)]
    goals = {"standard": STANDARD_GOAL, "batched": BATCHED_GOAL}
    first = bare[0]["images_per_s"]
    ray_error = ""
    sides = {
        mode: _through_worker(ctx, mode, image_dir, goal * first) for mode, goal in goals.items()
    }
    try:
        sides[RAY] = _through_ray(ctx, image_dir)
    except ProcessFailedError as exc:  # the comparison is reported as not measured
        print(f"[bench]   Ray Serve failed: {exc}", flush=True)
        ray_error = str(exc)[:300]
    for _ in range(max(ctx.config.engine_passes - 1, 1)):
        bare.append(bare_run(["--images", str(image_dir)], bare_log, ctx.device))
    ctx.memory["bare-engine"] = max(run["rss_bytes"] for run in bare)
    for side in sides.values():
        side["same_text_as_bare"] = text_agreement(bare[0]["texts"], side.pop("texts"))
    for run in bare:
        run["texts"] = len(run["texts"])
    bare_rate = max(run["images_per_s"] for run in bare)
    ratios = {
        mode: round(ratio(side["images_per_s"], bare_rate), 3) for mode, side in sides.items()
    }
    ray_rate = sides[RAY]["images_per_s"] if RAY in sides else math.nan
    ratio_to_ray = {
        mode: round(ratio(side["images_per_s"], ray_rate), 3) for mode, side in sides.items()
    }
    p95 = {mode: side["job_latency_ms"]["p95"] for mode, side in sides.items()}
    ray_p95 = p95.get(RAY, math.nan)
    targets = [
        Target(
            "engine: standard vs bare",
            f">= {STANDARD_GOAL}x",
            ratios["standard"],
            ratios["standard"] >= STANDARD_GOAL,
            "x",
        ),
        Target(
            f"engine: batched vs bare ({ctx.device.upper()})",
            f"> {BATCHED_GOAL}x",
            ratios["batched"],
            ratios["batched"] > BATCHED_GOAL,
            "x",
        ),
        Target(
            "engine: batched vs Ray Serve batched, images/s",
            f">= {RAY_GOAL}x",
            ratio_to_ray["batched"],
            ratio_to_ray["batched"] >= RAY_GOAL,
            "x",
        ),
        Target(
            "engine: batched p95 vs Ray Serve batched p95",
            "<= 1.0x",
            round(ratio(p95["batched"], ray_p95), 3),
            p95["batched"] <= ray_p95,
            "x",
        ),
    ]
    return {
        "images": describe(paths),
        "bare_runs": bare,
        "bare_images_per_s": round(bare_rate, 3),
        "worker": sides,
        "ratio_to_bare": ratios,
        "ratio_to_ray": ratio_to_ray,
        "ray_error": ray_error,
        "targets": [target.as_dict() for target in targets],
    }
