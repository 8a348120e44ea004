"""The bare engine library, called the way a user would call it: construct `RapidOCR()` with
its defaults and pass one image at a time. Runs as its own process (like the worker), so its
resident size and CPU are its own.

    python -m benchmarks.bare_engine --images DIR
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.procs import rss_bytes
from benchmarks.stats import latency_summary_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.bare_engine")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    payloads = [path.read_bytes() for path in sorted(args.images.glob("*.png"))]
    if not payloads:
        raise SystemExit(f"no PNG files in {args.images}")

    from rapidocr import RapidOCR  # noqa: PLC0415 - imported after the images are read

    load_started = time.perf_counter()
    # a GPU user turns on the CUDA provider; everything else stays at the defaults
    params = {"EngineConfig.onnxruntime.use_cuda": True} if args.device == "gpu" else None
    engine = RapidOCR(params=params)
    engine(payloads[0])  # warm-up, as the worker does before it reports ready
    load_s = time.perf_counter() - load_started

    durations: list[float] = []
    texts: list[str] = []
    started = time.perf_counter()
    for payload in payloads:
        one = time.perf_counter()
        output = engine(payload)
        durations.append(time.perf_counter() - one)
        texts.extend(getattr(output, "txts", None) or ())
    wall = time.perf_counter() - started
    json.dump(
        {
            "images": len(payloads),
            "wall_s": round(wall, 3),
            "images_per_s": round(len(payloads) / wall, 3),
            "lines": len(texts),
            "per_image_ms": latency_summary_ms(durations),
            "load_and_warmup_s": round(load_s, 2),
            "rss_bytes": rss_bytes(os.getpid()),
            "texts": texts,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
