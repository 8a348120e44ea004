"""Suite 5: pages/s of one multi-page PDF through our worker, in standard and in batched
mode, against the bare engine reading the same pages drawn at the same DPI.

A document is one job: the worker draws its pages (PDFium) and recognises them, in batched
mode several pages per engine call, bounded by `OCR_BATCH_MAX_PIXELS`. The PDF is uploaded
`document_copies` times at once, so batched mode may also mix pages of different jobs."""

from __future__ import annotations

from pathlib import Path
from statistics import mean
from typing import Any

from PIL import Image
from tests.support.documents import render_corpus  # the tests' shared renderer

from benchmarks.context import Ctx, Target
from benchmarks.engine_bench import bare_run, text_agreement
from benchmarks.runner import measure_closed, warm_up
from benchmarks.stack import RuntimeStack, StackSpec
from benchmarks.stats import ratio

DPI = 200  # the runtime's default OCR_PDF_DPI; the PDF is written at it, so pages keep size
MODES = {"standard": 0.95, "batched": 1.0}  # goal: pages/s as a multiple of the bare engine's


def write_pdf(pages: int, path: Path, seed: int = 11) -> Path:
    """`pages` rendered documents as one PDF, each page an image at `DPI`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(doc.image).convert("RGB") for doc in render_corpus(pages, seed=seed)]
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=DPI)
    return path


def _through_worker(
    ctx: Ctx, mode: str, folder: Path, pages: int, drain_s: float
) -> dict[str, Any]:
    copies = ctx.config.document_copies
    spec = StackSpec(
        label=f"documents-{mode}",
        mode=mode,
        engine="onnx",
        extra_env={"OCR_DEVICE": ctx.device, "OCR_PDF_DPI": str(DPI)},
    )
    with RuntimeStack(ctx.services, spec, ctx.log_dir) as system:
        ctx.watch(system)
        warm_up(system, 2)
        since = system.cutoff()
        result = measure_closed(system, copies, copies, drain_s, folder)
        result["pages_per_s"] = round(result["jobs_per_s"] * pages, 3)
        result["pages_per_result"] = system.table.page_counts(since)
        result["texts"] = system.table.result_texts(since)
        ctx.remember_memory(system)
    result["settings"] = spec.settings()
    print(f"[bench]   documents {mode}: {result['pages_per_s']} pages/s", flush=True)
    return result


def run(ctx: Ctx) -> dict[str, Any]:
    pages = ctx.config.document_pages
    folder = ctx.results_dir / "documents"
    pdf = write_pdf(pages, folder / f"document-{pages}p.pdf")
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    bare_args = ["--pdf", str(pdf), "--dpi", str(DPI)]
    log = ctx.log_dir / "bare-engine-documents.log"
    # bare before and after the worker runs, as in the engine suite: the gap shows drift
    bare = [bare_run(bare_args, log, ctx.device)]
    # the whole document set at a quarter of the bare engine's speed, before giving up
    work = pages * ctx.config.document_copies
    drain_s = max(ctx.config.drain_timeout_s, 4 * work / bare[0]["images_per_s"])
    sides = {mode: _through_worker(ctx, mode, folder, pages, drain_s) for mode in MODES}
    bare.append(bare_run(bare_args, log, ctx.device))
    bare_rate = mean(run["images_per_s"] for run in bare)
    for side in sides.values():
        # every copy is the same document, so each should read the bare engine's lines
        side["same_text_as_bare"] = text_agreement(
            bare[0]["texts"] * ctx.config.document_copies, side.pop("texts")
        )
    for one in bare:
        one["texts"] = len(one["texts"])
    ratios = {mode: round(ratio(side["pages_per_s"], bare_rate), 3) for mode, side in sides.items()}
    targets = [
        Target(
            f"documents: {mode} vs bare, pages/s",
            f">= {goal}x",
            ratios[mode],
            ratios[mode] >= goal,
            "x",
        )
        for mode, goal in MODES.items()
    ]
    return {
        "pdf": {
            "pages": pages,
            "dpi": DPI,
            "bytes": pdf.stat().st_size,
            "copies": ctx.config.document_copies,
        },
        "bare_runs": bare,
        "bare_pages_per_s": round(bare_rate, 3),
        "worker": sides,
        "ratio_to_bare": ratios,
        "targets": [target.as_dict() for target in targets],
    }
