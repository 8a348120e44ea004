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

import uvloop
from PIL import Image

from benchmarks.http_client import ConnectionPool, HttpError, Target
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
    headers: dict[str, str] = field(default_factory=dict)

    def requests_for(self, urls: list[str]) -> list[tuple[Target, dict[int, bytes]]]:
        """Per URL: where it goes, and a cache of request heads by body length."""
        return [(Target.parse(url), {}) for url in urls]

    async def post(
        self,
        pool: ConnectionPool,
        destination: tuple[Target, dict[int, bytes]],
        body: bytes,
        due: float | None = None,
    ) -> None:
        target, heads = destination
        head = heads.get(len(body))
        if head is None:
            head = heads[len(body)] = target.request_head(CONTENT_TYPE, len(body), self.headers)
        sent = time.perf_counter()  # uvloop's loop.time() only has millisecond resolution
        try:
            status, answer = await pool.post(target, head + body)
            self.statuses[str(status)] += 1
            if status >= 400 and not self.first_error:
                self.first_error = answer[:300].decode("utf-8", "replace")
        except (HttpError, TimeoutError) as exc:
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
    pool = ConnectionPool(limit=concurrency, timeout_s=60)
    destinations = rec.requests_for(urls)
    cursor = iter(range(count))

    async def lane() -> None:
        for index in cursor:
            await rec.post(pool, destinations[index % len(urls)], bodies[index % len(bodies)])

    try:
        await asyncio.gather(*(lane() for _ in range(concurrency)))
    finally:
        pool.close()


async def run_open(
    urls: list[str],
    *,
    bodies: list[bytes],
    rate: float,
    duration: float,
    connections: int,
    rec: Recorder,
) -> None:
    pool = ConnectionPool(limit=connections, timeout_s=30)
    destinations = rec.requests_for(urls)
    total = int(rate * duration)
    origin = time.perf_counter() + 0.05
    tasks = []
    try:
        for index in range(total):
            due = origin + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            destination = destinations[index % len(urls)]
            body = bodies[index % len(bodies)]
            tasks.append(asyncio.create_task(rec.post(pool, destination, body, due)))
        await asyncio.gather(*tasks)
    finally:
        pool.close()


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
