"""The engine comparison on a bare GPU machine: the bare RapidOCR library with ONNX Runtime's
CUDA provider, then the all-in-one server (API -> SQLite -> in-process queue -> worker, the
product's own code path) in standard and in batched mode, on the same images, with the GPU's
utilisation sampled from NVML during each pass. It needs no Kafka, MariaDB or cluster, so it
runs on a GPU machine that has only Python (the full suite's `--device gpu` needs the
services too).

    python -m benchmarks.gpu_bench --images 96 --out gpu.json [--device cpu]

`--device cpu` runs the same passes without CUDA or NVML (a dry run of the script).
Prints a markdown table; writes every figure to `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from statistics import mean
from types import TracebackType
from typing import Any

import aiohttp

from benchmarks import procs
from benchmarks.engine_bench import bare_run, text_agreement
from benchmarks.images import describe, write_documents
from benchmarks.loadgen import CONTENT_TYPE, multipart_body
from benchmarks.report_gpu import section
from benchmarks.stats import latency_summary_ms

SAMPLE_EVERY_S = 0.1
READY_TIMEOUT_S = 300.0  # the first CUDA session builds its kernels' caches
# Batched mode: a batch the size of the clients in flight, and a wait short next to one
# batch's compute on the GPU.
BATCH_SIZE = 16
BATCH_WAIT_MS = 10
CONCURRENCY = 32  # clients in flight in both modes, so only the worker's grouping differs


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    env: dict[str, str]


MODES = (
    Mode("standard", {"OCR_MODE": "standard", "OCR_BATCH_MAX_SIZE": "1"}),
    Mode(
        "batched",
        {
            "OCR_MODE": "batched",
            "OCR_BATCH_MAX_SIZE": str(BATCH_SIZE),
            "OCR_BATCH_MAX_WAIT_MS": str(BATCH_WAIT_MS),
        },
    ),
)


def utilisation_summary(samples: list[tuple[int, int]]) -> dict[str, float]:
    """(utilisation %, memory used MiB) samples -> mean and peak; NaN-free for none."""
    if not samples:
        return {"samples": 0, "mean_util_pct": 0.0, "max_util_pct": 0.0, "max_memory_mib": 0.0}
    return {
        "samples": len(samples),
        "mean_util_pct": round(mean(util for util, _ in samples), 1),
        "max_util_pct": float(max(util for util, _ in samples)),
        "max_memory_mib": float(max(memory for _, memory in samples)),
    }


@dataclass
class GpuSampler:
    """Samples GPU 0's utilisation and memory in a thread while in the `with` block; does
    nothing where NVML is missing (`available` False)."""

    samples: list[tuple[int, int]] = field(default_factory=list)
    available: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        try:
            import pynvml  # noqa: PLC0415 - only on a machine with the NVIDIA driver

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # no driver or no nvidia-ml-py: the pass runs unsampled
            return self
        self.available = True
        self._thread = threading.Thread(target=self._sample, args=(pynvml, handle), daemon=True)
        self._thread.start()
        return self

    def _sample(self, nvml: Any, handle: Any) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            self.samples.append((int(rates.gpu), int(memory.used) // 2**20))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self) -> dict[str, float]:
        return utilisation_summary(self.samples)


class AllInOne:
    """`ocr-runtime all-in-one` in its own process on a fresh SQLite file."""

    def __init__(self, mode: Mode, device: str, work: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._name = mode.name
        self._work = work
        database = work / f"{mode.name}.db"
        database.unlink(missing_ok=True)
        self._env = {
            **os.environ,
            **mode.env,
            "OCR_ENGINE": "onnx",
            "OCR_DEVICE": device,
            "OCR_HTTP_PORT": str(port),
            "OCR_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "OCR_LOG_LEVEL": "WARNING",
        }
        self._process: procs.ManagedProcess | None = None
        self.ready_s = 0.0

    def __enter__(self) -> AllInOne:
        argv = [sys.executable, "-m", "ocr_runtime.bootstrap", "all-in-one"]
        self._process = procs.start(self._name, argv, self._env, self._work)
        ready = procs.wait_http_ready(f"{self.url}/readyz", self._process, READY_TIMEOUT_S)
        self.ready_s = round(ready, 1)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.stop(timeout=30)


async def _closed_loop(url: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    """Every body through `POST /v1/ocr` (submit and wait), `concurrency` in flight."""
    queue = list(reversed(bodies))
    latencies: list[float] = []
    texts: list[str] = []
    failures: list[int] = []

    async def lane(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            sent = time.perf_counter()
            async with session.post(
                f"{url}/v1/ocr?timeout=120", data=body, headers={"Content-Type": CONTENT_TYPE}
            ) as answer:
                view = await answer.json()
            if answer.status != 200 or view.get("status") != "succeeded":
                failures.append(answer.status)
                continue
            latencies.append(time.perf_counter() - sent)
            texts.extend(line["text"] for line in view["result"]["lines"])

    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(lane(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "images": len(latencies),
        "failed": len(failures),
        "wall_s": round(wall, 3),
        "images_per_s": round(len(latencies) / wall, 3),
        "job_latency_ms": latency_summary_ms(latencies),
        "texts": texts,
    }


def server_pass(mode: Mode, device: str, work: Path, bodies: list[bytes]) -> dict[str, Any]:
    with AllInOne(mode, device, work, port=18080) as server:
        asyncio.run(_closed_loop(server.url, bodies[:2], 2))  # warm-up, as in the CPU suite
        with GpuSampler() as gpu:
            result = asyncio.run(_closed_loop(server.url, bodies, CONCURRENCY))
        result["gpu"] = gpu.summary()
        result["ready_s"] = server.ready_s
        result["settings"] = mode.env
    print(f"[gpu-bench] {mode.name}: {result['images_per_s']} images/s", flush=True)
    return result


def bare_pass(image_dir: Path, work: Path, device: str) -> dict[str, Any]:
    with GpuSampler() as gpu:
        result = bare_run(["--images", str(image_dir)], work / "bare-engine.log", device)
    result["gpu"] = gpu.summary()
    return result


def _installed(name: str) -> str:
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return f"no {name}"


def describe_machine() -> str:
    """GPU name, memory and driver from nvidia-smi; CPUs; Python; ONNX Runtime."""
    try:
        query = [
            "nvidia-smi",
            "--query-gpu=name,memory.total,driver_version",
            "--format=csv,noheader",
        ]
        answer = subprocess.run(query, check=False, capture_output=True, text=True, timeout=30)
        gpu = answer.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        gpu = "no nvidia-smi"
    runtime = ", ".join(_installed(name) for name in ("onnxruntime-gpu", "rapidocr"))
    return f"{gpu or 'no GPU'}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; {runtime}"


def run(count: int, device: str, work: Path, out: Path) -> dict[str, Any]:
    """Our two modes first, then the bare engine; `out` is rewritten after every pass, so a
    run stopped at its time limit still leaves what it measured."""
    image_dir = work / "images"
    paths = write_documents(count, image_dir)
    bodies = [multipart_body(path.read_bytes()) for path in paths]
    results: dict[str, Any] = {
        "measured_on": datetime.now(UTC).date().isoformat(),
        "machine": describe_machine(),
        "command": "python -m benchmarks.gpu_bench " + " ".join(sys.argv[1:]),
        "device": device,
        "images": describe(paths),
    }
    texts: dict[str, list[str]] = {}
    for mode in MODES:
        results[mode.name] = server_pass(mode, device, work, bodies)
        texts[mode.name] = results[mode.name].pop("texts")
        out.write_text(json.dumps(results, indent=2) + "\n")
    results["bare"] = bare_pass(image_dir, work, device)
    for name, lines in texts.items():
        results[name]["same_text_as_bare"] = text_agreement(results["bare"]["texts"], lines)
    results["bare"]["texts"] = len(results["bare"]["texts"])
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.gpu_bench")
    parser.add_argument("--images", type=int, default=96, help="distinct documents")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="gpu")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-bench"))
    parser.add_argument("--out", type=Path, default=Path("gpu-bench.json"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = run(args.images, args.device, args.work, args.out)
    print("\n".join(section(results)), flush=True)
    print(f"[gpu-bench] wrote {args.out}; copy it to docs/benchmarks-gpu.json to publish it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
