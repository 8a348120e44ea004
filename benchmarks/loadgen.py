"""The load generator: a separate process, so its CPU shows up as its own and never shares an
event loop with the server it measures.

    python -m benchmarks.loadgen closed --url URL --count N --concurrency C [--images DIR]
    python -m benchmarks.loadgen open --url URL --rate R --duration S

`closed` sends N requests with C in flight (throughput); `open` sends at a fixed arrival rate
whatever the server does (latency without coordinated omission: each latency counts from the
moment the request was due, not from when the client got round to it). Multipart bodies are
built before the clock starts, each with a distinct image, so nothing is deduplicated.
`--url` may list several URLs separated by commas (several API processes): request i goes
to URL i mod n, as a Service spreads requests over its pods. Prints one JSON object on stdout.
An API key in the environment (`OCR_BENCH_API_KEY`, kept off the command line) is sent as
`Authorization: Bearer <key>`, as an authenticated deployed API needs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from PIL import Image

from benchmarks.stats import latency_summary_ms

_BOUNDARY = "benchmarkboundary7d1c"
CONTENT_TYPE = f"multipart/form-data; boundary={_BOUNDARY}"
API_KEY_ENV = "OCR_BENCH_API_KEY"


# the uploads a run may read from --images, by suffix
UPLOAD_TYPES = {".png": "image/png", ".pdf": "application/pdf"}


def multipart_body(image: bytes, filename: str = "page.png") -> bytes:
    content_type = UPLOAD_TYPES[Path(filename).suffix]
    head = (
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()
    return head + image + f"\r\n--{_BOUNDARY}--\r\n".encode()


def tiny_png(index: int) -> bytes:
    """A small valid PNG whose pixels encode `index`, so every upload is distinct."""
    image = Image.new("RGB", (64, 32), (255, 255, 255))
    for offset, byte in enumerate(index.to_bytes(4, "big")):
        image.putpixel((offset, 0), (byte, byte, byte))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def build_bodies(count: int, images: Path | None) -> list[bytes]:
    if images is None:
        return [multipart_body(tiny_png(i)) for i in range(count)]
    files = sorted(path for path in images.iterdir() if path.suffix in UPLOAD_TYPES)
    if not files:
        raise SystemExit(f"no PNG or PDF files in {images}")
    return [multipart_body(path.read_bytes(), path.name) for path in files]


@dataclass
class Recorder:
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    first_error: str = ""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": CONTENT_TYPE})

    async def post(
        self, session: aiohttp.ClientSession, url: str, body: bytes, due: float | None = None
    ) -> None:
        sent = time.perf_counter()  # uvloop's loop.time() only has millisecond resolution
        try:
            async with session.post(url, data=body, headers=self.headers) as response:
                await response.read()
                self.statuses[str(response.status)] += 1
                if response.status >= 400 and not self.first_error:
                    self.first_error = (await response.text())[:300]
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.statuses[type(exc).__name__] += 1
            self.first_error = self.first_error or repr(exc)[:300]
        finished = time.perf_counter()
        start = sent if due is None else due
        self.latencies.append(finished - start)
        if due is not None:
            self.lags.append(sent - due)


async def run_closed(
    urls: list[str], bodies: list[bytes], count: int, concurrency: int, rec: Recorder
) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        cursor = iter(range(count))

        async def lane() -> None:
            for index in cursor:
                await rec.post(session, urls[index % len(urls)], bodies[index % len(bodies)])

        await asyncio.gather(*(lane() for _ in range(concurrency)))


async def run_open(
    urls: list[str],
    *,
    bodies: list[bytes],
    rate: float,
    duration: float,
    connections: int,
    rec: Recorder,
) -> None:
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        total = int(rate * duration)
        origin = time.perf_counter() + 0.05
        tasks = []
        for index in range(total):
            due = origin + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(
                    rec.post(session, urls[index % len(urls)], bodies[index % len(bodies)], due)
                )
            )
        await asyncio.gather(*tasks)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks.loadgen")
    parser.add_argument("kind", choices=["closed", "open"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=512)
    parser.add_argument("--images", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    planned = args.count if args.kind == "closed" else int(args.rate * args.duration)
    bodies = build_bodies(planned, args.images)
    rec = Recorder()
    key = os.environ.get(API_KEY_ENV)
    if key:
        rec.headers["Authorization"] = f"Bearer {key}"
    urls = [url for url in args.url.split(",") if url]
    cpu_before, wall_before = _cpu_seconds(), time.monotonic()
    if args.kind == "closed":
        coro = run_closed(urls, bodies, args.count, args.concurrency, rec)
    else:
        coro = run_open(
            urls,
            bodies=bodies,
            rate=args.rate,
            duration=args.duration,
            connections=args.connections,
            rec=rec,
        )
    _run(coro)
    wall = time.monotonic() - wall_before
    report: dict[str, Any] = {
        "kind": args.kind,
        "requests": len(rec.latencies),
        "wall_s": round(wall, 3),
        "achieved_rps": round(len(rec.latencies) / wall, 1) if wall else 0.0,
        "statuses": dict(rec.statuses),
        "first_error": rec.first_error,
        "latency_ms": latency_summary_ms(rec.latencies),
        "client_cpu_cores": round((_cpu_seconds() - cpu_before) / wall, 3) if wall else 0.0,
    }
    if rec.lags:
        report["client_lag_ms"] = latency_summary_ms(rec.lags)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


def _run(coro: Any) -> None:
    uvloop.run(coro)


if __name__ == "__main__":
    raise SystemExit(main())
