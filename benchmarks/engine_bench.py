"""Suite 1: images/s of the bare engine library versus the same images through our worker
(HTTP -> MariaDB -> Kafka -> worker -> MariaDB), in standard and in batched mode."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from statistics import mean
from typing import Any

from benchmarks.context import Ctx, Target
from benchmarks.images import describe, write_documents
from benchmarks.runner import measure_closed, warm_up
from benchmarks.stack import RuntimeStack, StackSpec
from benchmarks.stats import ratio

STANDARD_GOAL = 0.95
BATCHED_GOAL = 1.0


def _bare(image_dir: Path, log: Path, device: str) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.bare_engine",
        "--images",
        str(image_dir),
        "--device",
        device,
    ]
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


def _through_worker(
    ctx: Ctx, mode: str, image_dir: Path, count: int, min_rate: float
) -> dict[str, Any]:
    """`min_rate`: below it the pass is repeated under the profiler."""
    spec = StackSpec(
        label=f"engine-{mode}", mode=mode, engine="onnx", extra_env={"OCR_DEVICE": ctx.device}
    )
    with RuntimeStack(ctx.services, spec, ctx.log_dir) as stack:
        ctx.watch(stack)
        warm_up(stack, 2)
        since = stack.cutoff()
        result = measure_closed(stack, count, count, ctx.config.drain_timeout_s, image_dir)
        result["settings"] = spec.settings()
        result["startup_s"] = stack.startup_s
        result["images_per_s"] = result["jobs_per_s"]
        print(f"[bench]   engine {mode}: {result['images_per_s']} images/s", flush=True)
        result["texts"] = stack.table.result_texts(since)
        if ctx.profile and result["images_per_s"] < min_rate:
            result["profile"] = ctx.profile_closed(stack, count, count, image_dir)
        ctx.remember_memory(stack)
    return result


def _text_agreement(bare: list[str], worker: list[str]) -> float:
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
    # bare, standard, batched, bare again: the two bare runs bracket the others, so drift
    # in the machine's speed during the run shows up as a gap between them
    bare = [_bare(image_dir, bare_log, ctx.device)]
    goals = {"standard": STANDARD_GOAL, "batched": BATCHED_GOAL}
    first = bare[0]["images_per_s"]
    sides = {
        mode: _through_worker(ctx, mode, image_dir, len(paths), goal * first)
        for mode, goal in goals.items()
    }
    bare.append(_bare(image_dir, bare_log, ctx.device))
    ctx.memory["bare-engine"] = max(run["rss_bytes"] for run in bare)
    for side in sides.values():
        side["same_text_as_bare"] = _text_agreement(bare[0]["texts"], side.pop("texts"))
    for run in bare:
        run["texts"] = len(run["texts"])
    bare_rate = mean(run["images_per_s"] for run in bare)
    ratios = {
        mode: round(ratio(side["images_per_s"], bare_rate), 3) for mode, side in sides.items()
    }
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
    ]
    return {
        "images": describe(paths),
        "bare_runs": bare,
        "bare_images_per_s": round(bare_rate, 3),
        "worker": sides,
        "ratio_to_bare": ratios,
        "targets": [target.as_dict() for target in targets],
    }
