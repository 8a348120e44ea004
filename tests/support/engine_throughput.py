"""Images per second of the ONNX engine: RapidOCR one image at a time against
`recognize_batch` at several batch sizes, on rendered documents. Not a test (timings vary
with the machine); run it to choose the batch defaults:

    uv run --frozen python -m tests.support.engine_throughput --documents 16 --rounds 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from ocr_runtime.adapters.engines._batching import chunked
from ocr_runtime.adapters.engines.rapid import RapidOcrEngine, RapidOcrOptions
from ocr_runtime.core.settings import Device
from ocr_runtime.domain import OcrResult
from tests.support.documents import normalise, read_rows, render_corpus

Images = Sequence[npt.NDArray[np.uint8]]
Run = Callable[[Images], list[OcrResult]]


def _timed(run: Run, images: Images, batch: int) -> tuple[float, float, list[OcrResult]]:
    """Images per wall-clock second, and CPU seconds per image: on a machine shared with
    other work the CPU time is the steadier of the two."""
    results: list[OcrResult] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for group in chunked(images, batch):
        results.extend(run(group))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(images) / wall, cpu / len(images), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many passes")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["1:6", "1:16", "4:16"],
        help="engine configurations as det_batch:rec_batch",
    )
    parser.add_argument("--device", type=Device, default=Device.CPU)
    args = parser.parse_args()

    corpus = render_corpus(args.documents, seed=11)
    images = [document.image for document in corpus]
    lines = sum(len(document.lines) for document in corpus)
    print(f"{len(images)} documents, {lines} lines, device {args.device.value}", flush=True)

    engines: dict[tuple[int, int], RapidOcrEngine] = {}
    # RapidOCR's stock settings (rec batch 6) serve as the one-at-a-time baseline.
    for config in dict.fromkeys(["1:6", *args.configs]):
        det, rec = (int(part) for part in config.split(":"))
        engine = RapidOcrEngine(
            RapidOcrOptions(device=args.device, det_batch_size=det, rec_batch_size=rec)
        )
        engine.load()
        engines[(det, rec)] = engine
    print(f"providers: {next(iter(engines.values())).providers}")

    cases: list[tuple[str, Run, int]] = []
    cases.append(("RapidOCR, one at a time", engines[(1, 6)].recognize_unbatched, 1))
    for (det, rec), engine in engines.items():
        if f"{det}:{rec}" not in args.configs:
            continue
        for batch in args.batches:
            label = f"batch {batch}, det {det}, rec {rec}"
            cases.append((label, engine.recognize_batch, batch))

    best: dict[str, float] = {}
    cpu_per_image: dict[str, float] = {}
    exact: dict[str, int] = {}
    for round_ in range(args.rounds):
        for label, run, batch in cases:
            rate, cpu, results = _timed(run, images, batch)
            print(f"  round {round_ + 1} {label}: {rate:.2f} images/s, {cpu:.2f} cpu s/image")
            best[label] = max(best.get(label, 0.0), rate)
            cpu_per_image[label] = min(cpu_per_image.get(label, float("inf")), cpu)
            exact[label] = sum(
                normalise(got) == expected
                for document, result in zip(corpus, results, strict=True)
                for expected, got in zip(document.lines, read_rows(document, result), strict=True)
            )
    reference = cpu_per_image[cases[0][0]]
    print(f"{'case':<30}{'images/s':>9}{'cpu s/img':>11}{'cpu vs one':>12}{'exact':>10}")
    for label, _, _ in cases:
        print(
            f"{label:<30}{best[label]:>9.2f}{cpu_per_image[label]:>11.2f}"
            f"{reference / cpu_per_image[label]:>11.2f}x{exact[label]:>6}/{lines}"
        )


if __name__ == "__main__":
    main()
