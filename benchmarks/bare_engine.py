"""The bare engine library, called the way a user would call it: construct `RapidOCR()` with
its defaults and pass one image at a time. Runs as its own process (like the worker), so its
resident size and CPU are its own.

    python -m benchmarks.bare_engine --images DIR
    python -m benchmarks.bare_engine --pdf FILE --dpi 200
Prints one JSON object on stdout. With `--pdf`, each page is drawn with PDFium at `--dpi`
(as the worker draws it) right before the engine reads it, inside the timed loop: a user of
the bare library has to rasterise the pages too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.procs import rss_bytes
from benchmarks.stats import latency_summary_ms

POINTS_PER_INCH = 72  # PDF page sizes are in points

Input = Callable[[], Any]  # draws or reads one engine input when called


def _same(payload: bytes) -> bytes:
    return payload


def _png_inputs(folder: Path) -> list[Input]:
    payloads = [path.read_bytes() for path in sorted(folder.glob("*.png"))]
    if not payloads:
        raise SystemExit(f"no PNG files in {folder}")
    return [partial(_same, payload) for payload in payloads]


def _pdf_inputs(path: Path, dpi: int) -> Iterator[Input]:
    """One input per page: the page drawn as the worker draws it, as BGR for RapidOCR."""
    import pypdfium2 as pdfium  # noqa: PLC0415 - only the PDF mode needs it

    pdf = pdfium.PdfDocument(path.read_bytes())

    def draw(index: int) -> Any:
        page = pdf[index]
        try:
            bitmap = page.render(scale=dpi / POINTS_PER_INCH, rev_byteorder=True)
            rgb = np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8)
            bitmap.close()
        finally:
            page.close()
        return np.ascontiguousarray(rgb[:, :, ::-1])

    for index in range(len(pdf)):
        yield partial(draw, index)


def _measure(engine: Any, inputs: list[Input]) -> dict[str, Any]:
    durations: list[float] = []
    texts: list[str] = []
    started = time.perf_counter()
    for source in inputs:
        one = time.perf_counter()
        output = engine(source())
        durations.append(time.perf_counter() - one)
        texts.extend(getattr(output, "txts", None) or ())
    wall = time.perf_counter() - started
    return {
        "images": len(inputs),
        "wall_s": round(wall, 3),
        "images_per_s": round(len(inputs) / wall, 3),
        "lines": len(texts),
        "per_image_ms": latency_summary_ms(durations),
        "texts": texts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.bare_engine")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="a folder of PNG files")
    source.add_argument("--pdf", type=Path, help="one PDF; every page is an input")
    parser.add_argument("--dpi", type=int, default=200, help="rendering DPI of --pdf")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    inputs = _png_inputs(args.images) if args.images else list(_pdf_inputs(args.pdf, args.dpi))

    from rapidocr import RapidOCR  # noqa: PLC0415 - imported after the inputs are ready

    load_started = time.perf_counter()
    # A GPU user turns on the CUDA provider. cuDNN's search is set to heuristic, as the worker
    # sets it: RapidOCR's default, exhaustive, searches again for every new page shape (about
    # 1.7 s each on an H200), and every rendered document has its own shape.
    params = (
        {
            "EngineConfig.onnxruntime.use_cuda": True,
            "EngineConfig.onnxruntime.cuda_ep_cfg.cudnn_conv_algo_search": "HEURISTIC",
        }
        if args.device == "gpu"
        else None
    )
    engine = RapidOCR(params=params)
    engine(inputs[0]())  # warm-up, as the worker does before it reports ready
    load_s = time.perf_counter() - load_started

    result = _measure(engine, inputs)
    result["load_and_warmup_s"] = round(load_s, 2)
    result["rss_bytes"] = rss_bytes(os.getpid())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
