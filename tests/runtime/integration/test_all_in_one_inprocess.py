"""The all-in-one wiring (SQLite, in-process queue, micro-batching worker) in this process,
on a scripted engine so batching, retries and restart recovery can be observed exactly."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from PIL import Image as PilImage

from ocr_runtime.application.ports import Image
from ocr_runtime.bootstrap.all_in_one import build_all_in_one_app
from ocr_runtime.core.settings import Settings
from ocr_runtime.domain import OcrLine, OcrResult
from ocr_runtime.migrations import upgrade_database

BOX = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
POISON_WIDTH = 66


class ScriptedEngine:
    """Loads when `release` is set; reads an image's width as its text; crashes on any batch
    holding an image POISON_WIDTH pixels wide."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.calls: list[int] = []
        self._loaded = False

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self.release.wait()
        self._loaded = True

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        self.calls.append(len(images))
        if any(image.shape[1] == POISON_WIDTH for image in images):
            raise RuntimeError("scripted crash")
        return [OcrResult((OcrLine(str(image.shape[1]), 0.9, BOX),)) for image in images]


def png(width: int) -> bytes:
    buffer = io.BytesIO()
    PilImage.new("RGB", (width, 20), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def settings_for(tmp_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ocr.db'}"
    upgrade_database(url)
    return Settings(database_url=url, batch_max_size=8, batch_max_wait_ms=50,
                    retry_backoff_ms=1, max_attempts=2)  # fmt: skip


@asynccontextmanager
async def serving(settings: Settings, engine: ScriptedEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = build_all_in_one_app(settings, engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://aio") as client:
            yield client


async def submit(client: httpx.AsyncClient, width: int) -> str:
    response = await client.post("/v1/jobs", files={"image": ("i.png", png(width), "image/png")})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


async def finished(client: httpx.AsyncClient, job_id: str) -> dict[str, object]:
    while True:
        body: dict[str, object] = (await client.get(f"/v1/jobs/{job_id}")).json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        await asyncio.sleep(0.02)


async def test_queued_jobs_run_as_one_batch_and_a_poison_image_fails_alone(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    engine = ScriptedEngine(release)
    async with serving(await asyncio.to_thread(settings_for, tmp_path), engine) as client:
        assert (await client.get("/readyz")).json()["checks"]["model"] == "failing"
        ids = [await submit(client, width) for width in (31, 32, POISON_WIDTH, 34)]
        release.set()  # the model is ready: the worker finds four jobs waiting
        results = [await asyncio.wait_for(finished(client, i), 60) for i in ids]
        metrics = (await client.get("/metrics")).text
    assert "ocr_jobs_succeeded_total 3.0" in metrics
    assert 'ocr_jobs_failed_total{code="engine_error"} 1.0' in metrics
    assert "ocr_inference_seconds_count" in metrics
    assert engine.calls[0] == 4  # one batch, then image-by-image after the crash
    texts = [r["result"]["text"] if r["result"] else None for r in results]  # type: ignore[index]
    assert texts == ["31", "32", None, "34"]
    poisoned = results[2]
    assert poisoned["status"] == "failed"
    assert poisoned["error"]["code"] == "engine_error"  # type: ignore[index]
    assert engine.calls.count(1) >= 4 + 1  # fallback singles, then the retry of the poison


async def test_jobs_queued_before_a_restart_finish_after_it(tmp_path: Path) -> None:
    settings = await asyncio.to_thread(settings_for, tmp_path)
    never = threading.Event()
    async with serving(settings, ScriptedEngine(never)) as client:
        job_id = await submit(client, 45)
    never.set()  # let the abandoned loader thread end
    ready = threading.Event()
    ready.set()
    async with serving(settings, ScriptedEngine(ready)) as client:
        body = await asyncio.wait_for(finished(client, job_id), 60)
    assert body["status"] == "succeeded"
    assert body["result"]["text"] == "45"  # type: ignore[index]


async def test_a_full_queue_answers_503_and_fails_only_the_refused_job(tmp_path: Path) -> None:
    settings = (await asyncio.to_thread(settings_for, tmp_path)).model_copy(
        update={"inprocess_queue_size": 1}
    )
    never = threading.Event()
    try:
        async with serving(settings, ScriptedEngine(never)) as client:
            accepted = await submit(client, 40)
            refused = await client.post(
                "/v1/jobs", files={"image": ("i.png", png(41), "image/png")}
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "queue_full"
            assert (await client.get(f"/v1/jobs/{accepted}")).json()["status"] == "queued"
            assert (await client.get("/healthz")).status_code == 200
    finally:
        never.set()
