"""The peer most teams would pick for batched model serving: Ray Serve with `@serve.batch`,
local (one node started by this process, no cluster), serving the same engine as our worker.

    python -m benchmarks.ray_baseline.app --port 8123

Two deployments, as Ray's guides build a batched model behind an HTTP front:

- `Ingress` (Ray's plain HTTP deployment: `__call__` gets the Starlette request; FastAPI
  through `@serve.ingress` cannot be used with this FastAPI, whose app Ray fails to
  pickle): reads the upload, checks its header, stores the job row (`queued`, created_at)
  and answers 202; the job goes on in the background as a
  call to the model deployment through its handle.
- `Model`: `@serve.batch` collects the calls, decodes each image and runs the batch through
  the runtime's own engine (`build_engine` from `OCR_ENGINE`: RapidOCR on ONNX Runtime, or
  the zero-cost `noop`), exactly the work our worker does per batch, then records the
  batch's results in one transaction (finished_at), as a careful Ray user would.

So the engine, the decoding and the database are the same on both sides; what differs is
the serving layer: Ray's HTTP proxy, actors, object store and batcher against our API,
Kafka and consume loop. The image bytes travel through Ray's object store; the job row
carries no image.

Batching, as Ray's "Dynamic Request Batching" guide advises: `max_batch_size` a power of
two, `batch_wait_timeout_s` well below the latency budget left after the batch's compute;
`max_ongoing_requests` of the model at twice the batch size, so that the next batch can
fill while one runs (Ray's default of 5 would cap every batch at 5). Defaults here: 8 and
20 ms for the engine (our batched mode's size and wait), the harness passes 64 for the
zero-cost engine.

Shutdown: SIGTERM or SIGINT -> `serve.shutdown()` -> `ray.shutdown()` -> exit 0; the harness
checks that no Ray process outlives it. Nothing is downloaded: no runtime_env, no
dashboard, usage stats off.

Configuration: BASELINE_DATABASE_URL (mysql+aiomysql://...), OCR_ENGINE, OCR_DEVICE.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import sys
import threading
import uuid
from typing import Any

from PIL import Image, UnidentifiedImageError
from ray import serve
from ray.serve.handle import DeploymentHandle
from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from benchmarks.baseline_db import jobs, metadata, utcnow

DATABASE_URL = os.environ.get("BASELINE_DATABASE_URL", "mysql+aiomysql://ocr:ocr@127.0.0.1/ocr")


def _database() -> AsyncEngine:
    return create_async_engine(DATABASE_URL, pool_size=10, connect_args={"charset": "utf8mb4"})


class Model:
    """The runtime's engine behind `@serve.batch` (one replica; decode and inference run on a
    thread so the replica's event loop keeps collecting the next batch)."""

    def __init__(self, max_batch_size: int, batch_wait_s: float) -> None:
        from ocr_runtime.adapters.engines import build_engine  # noqa: PLC0415
        from ocr_runtime.application.images import ImageLimits  # noqa: PLC0415
        from ocr_runtime.core.settings import Settings  # noqa: PLC0415

        settings = Settings()
        self._limits = ImageLimits.from_settings(settings)
        self._engine = build_engine(settings)
        self._engine.load()
        self._database: AsyncEngine | None = None
        # the setters `@serve.batch` adds to the method, which its type does not show
        self.recognise.set_max_batch_size(max_batch_size)  # type: ignore[attr-defined]
        self.recognise.set_batch_wait_timeout_s(batch_wait_s)  # type: ignore[attr-defined]

    def _infer(self, images: list[bytes]) -> list[str]:
        from ocr_runtime.application.documents import decode_document  # noqa: PLC0415

        pages = [decode_document(data, self._limits)[0] for data in images]
        results = self._engine.recognize_batch(pages)
        return [
            json.dumps([{"text": line.text, "confidence": line.confidence} for line in r.lines])
            for r in results
        ]

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def recognise(self, requests: list[tuple[str, bytes]]) -> list[int]:
        texts = await asyncio.to_thread(self._infer, [data for _, data in requests])
        if self._database is None:
            self._database = _database()
        finished = utcnow()
        statement = (
            update(jobs)
            .where(jobs.c.job_id == bindparam("id"))
            .values(status="succeeded", result=bindparam("text"), finished_at=finished)
        )
        rows = [
            {"id": job_id, "text": text} for (job_id, _), text in zip(requests, texts, strict=True)
        ]
        async with self._database.begin() as conn:
            await conn.execute(statement, rows)
        return [len(text) for text in texts]

    async def __call__(self, job_id: str, data: bytes) -> int:
        return await self.recognise((job_id, data))


class Ingress:
    def __init__(self, model: DeploymentHandle) -> None:
        self._model = model
        self._database: AsyncEngine | None = None
        self._creating = asyncio.Lock()
        self._running: set[asyncio.Task[Any]] = set()

    async def _db(self) -> AsyncEngine:
        """The engine, once the table exists. Kept only after `create_all` finished: Ray
        cancels a request whose client left, and a readiness probe cancelled halfway used to
        leave an engine without its table, so every later insert failed."""
        if self._database is not None:
            return self._database
        async with self._creating:
            if self._database is None:
                database = _database()
                async with database.begin() as conn:
                    await conn.run_sync(metadata.create_all)
                self._database = database
        return self._database

    async def __call__(self, request: Request) -> JSONResponse:
        if request.url.path == "/readyz":
            await self._db()
            return JSONResponse({"status": "ready"})
        if request.url.path != "/v1/jobs" or request.method != "POST":
            return JSONResponse({"detail": "not found"}, status_code=404)
        async with request.form() as form:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                return JSONResponse({"detail": "no image field"}, status_code=400)
            data = await upload.read()
        try:
            with Image.open(io.BytesIO(data)) as header:
                header.size  # noqa: B018 - the header is read, the pixels are the model's
        except (UnidentifiedImageError, OSError):
            return JSONResponse({"detail": "not an image"}, status_code=422)
        job_id = uuid.uuid4().hex
        database = await self._db()
        async with database.begin() as conn:
            await conn.execute(
                jobs.insert().values(job_id=job_id, status="queued", image=b"", created_at=utcnow())
            )
        # the job goes on after the answer, as in our API and the Celery baseline
        task = asyncio.ensure_future(self._model.remote(job_id, data))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return JSONResponse({"job_id": job_id, "status": "queued"}, status_code=202)


def application(max_batch_size: int, batch_wait_s: float, ingress_replicas: int = 1) -> Any:
    model = serve.deployment(
        Model,
        max_ongoing_requests=2 * max_batch_size,
        ray_actor_options={"num_cpus": 0},
    ).bind(max_batch_size, batch_wait_s)
    ingress = serve.deployment(
        Ingress,
        # an async front that only does I/O: Ray's default of 5 would queue the load
        # generator's requests in the proxy
        max_ongoing_requests=1024,
        num_replicas=ingress_replicas,
        ray_actor_options={"num_cpus": 0},
    )
    return ingress.bind(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.ray_baseline.app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-wait-s", type=float, default=0.02)
    parser.add_argument("--ingress-replicas", type=int, default=1)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    import ray  # noqa: PLC0415

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    # after ray.init, which installs a handler of its own that exits without shutting down
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        _start_serve(args.port)
        serve.run(
            application(args.max_batch_size, args.batch_wait_s, args.ingress_replicas),
            name="ocr",
            route_prefix="/",
            blocking=False,
        )
        print(f"ray serve baseline ready on port {args.port}", flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


def _start_serve(port: int, attempts: int = 4) -> None:
    """serve.start(), again when it gave up on the HTTP proxy: it waits a fixed 60 s for the
    proxy to be ready, which a loaded 2-core machine can exceed. The controller it started
    keeps starting the proxy, and the next call connects to that controller."""
    from ray.exceptions import ActorDiedError  # noqa: PLC0415

    for attempt in range(1, attempts + 1):
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            return
        except (TimeoutError, ActorDiedError) as error:
            if attempt == attempts:
                raise
            print(f"serve.start attempt {attempt} failed ({error}); again", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
