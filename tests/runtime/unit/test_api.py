"""The HTTP contract, on fakes of the ports (the same app runs on SQL in the all-in-one test)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from PIL import Image as PilImage

from ocr_runtime.api import create_app
from ocr_runtime.application import JobMessage, JobOutcome
from ocr_runtime.application.errors import TransientError
from ocr_runtime.core.settings import Settings
from ocr_runtime.domain import OcrLine, OcrResult, TextLayer
from tests.runtime.unit.runtime_fakes import FakeBlobStore, FakePublisher, FakeRepository, png_bytes
from tests.support.pdfs import (
    blank_pdf,
    dark_square_page,
    encrypted_pdf,
    pdf_of_images,
    tiff_pages,
)

KEY = "s3cret-key"
BOX = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))


@dataclass
class Stack:
    client: httpx.AsyncClient
    repo: FakeRepository
    blobs: FakeBlobStore
    publisher: FakePublisher

    def nothing_stored(self) -> bool:
        return not self.repo.jobs and not self.blobs.blobs and not self.publisher.messages


class InstantWorker(FakePublisher):
    """Finishes every job the moment it is published, as a worker would later."""

    def __init__(self, repo: FakeRepository) -> None:
        super().__init__()
        self.repo = repo

    async def publish(self, message: JobMessage) -> None:
        await super().publish(message)
        result = OcrResult(lines=(OcrLine("hello", 0.97, BOX), OcrLine("world", 0.9, BOX)))
        await self.repo.record_outcomes([JobOutcome(message.job_id, datetime.now(UTC), result)])


async def make_stack(instant: bool = False, ready: bool = True, **overrides: object) -> Stack:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    repo, blobs = FakeRepository(), FakeBlobStore()
    publisher = InstantWorker(repo) if instant else FakePublisher()
    app = create_app(settings, repo, blobs, publisher, engine_ready=lambda: ready)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return Stack(client, repo, blobs, publisher)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = await make_stack(max_upload_bytes=200_000, max_pixels=1_000_000)
    yield s
    await s.client.aclose()


def image_file(data: bytes, content_type: str = "image/png") -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("page.png", data, content_type)}


async def test_submit_then_get(stack: Stack) -> None:
    response = await stack.client.post("/v1/jobs", files=image_file(png_bytes(120, 40)))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and len(body["job_id"]) == 32
    assert response.headers["location"] == f"/v1/jobs/{body['job_id']}"
    assert response.headers["x-request-id"]
    got = await stack.client.get(f"/v1/jobs/{body['job_id']}")
    assert got.status_code == 200
    view = got.json()
    assert set(view) == {"job_id", "status", "result", "error", "created_at", "finished_at",
                         "progress"}  # fmt: skip
    assert (view["status"], view["result"], view["error"], view["finished_at"]) == (
        "queued", None, None, None)  # fmt: skip
    assert view["progress"] is None

    await stack.repo.mark_running([body["job_id"]])
    await stack.repo.record_progress({body["job_id"]: (4, 9)})
    running = (await stack.client.get(f"/v1/jobs/{body['job_id']}")).json()
    assert (running["status"], running["progress"]) == ("running", {"pages_done": 4, "pages": 9})
    assert len(stack.publisher.messages) == 1


async def test_unknown_and_malformed_job_ids_are_404(stack: Stack) -> None:
    for job_id in ("0" * 32, "../etc", "x" * 500):
        response = await stack.client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_idempotency_key_returns_the_same_job(stack: Stack) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await stack.client.post("/v1/jobs", files=image_file(png_bytes()), headers=headers)
    second = await stack.client.post("/v1/jobs", files=image_file(png_bytes()), headers=headers)
    assert first.json()["job_id"] == second.json()["job_id"]
    assert len(stack.repo.jobs) == 1 and len(stack.publisher.messages) == 1


async def test_bad_idempotency_key_is_422(stack: Stack) -> None:
    response = await stack.client.post(
        "/v1/jobs", files=image_file(png_bytes()), headers={"Idempotency-Key": "k" * 200}
    )
    assert response.status_code == 422
    assert stack.nothing_stored()


@pytest.mark.parametrize("key", ["", "has space", "caf\u00e9"])
async def test_idempotency_keys_outside_printable_ascii_are_422(stack: Stack, key: str) -> None:
    headers = {b"Idempotency-Key": key.encode()}
    response = await stack.client.post("/v1/jobs", files=image_file(png_bytes()), headers=headers)
    assert response.status_code == 422, response.text
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert stack.nothing_stored()


async def test_text_layer_is_read_from_the_query(stack: Stack) -> None:
    prefer = await stack.client.post("/v1/jobs?text_layer=prefer", files=image_file(png_bytes()))
    assert prefer.status_code == 202, prefer.text
    assert prefer.headers["location"] == f"/v1/jobs/{prefer.json()['job_id']}"
    (message,) = stack.publisher.messages
    assert message.text_layer is TextLayer.PREFER
    bad = await stack.client.post("/v1/jobs?text_layer=always", files=image_file(png_bytes()))
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_parameter"
    assert "'ignore' or 'prefer'" in bad.json()["error"]["message"]
    assert len(stack.repo.jobs) == 1


async def test_the_api_key_is_checked_before_the_parameters() -> None:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    stack = await make_stack(api_key_hashes=[digest])
    response = await stack.client.post("/v1/ocr?timeout=-1", files=image_file(png_bytes()))
    assert response.status_code == 401
    assert stack.nothing_stored()


def truncated_jpeg() -> bytes:
    data = png_bytes(400, 300, "JPEG")
    return data[: len(data) // 2]


def bomb_png() -> bytes:
    """Highly compressible: 20000 x 20000 one-bit pixels in a few tens of KiB."""
    buffer = io.BytesIO()
    PilImage.new("1", (20_000, 20_000)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


BAD_INPUTS = [
    ("empty body", {"content": b""}, 400, "empty_body"),
    ("json body", {"json": {"image": "x"}}, 415, "unsupported_media_type"),
    ("missing field", {"files": {"other": ("a.png", png_bytes(), "image/png")}}, 422,
     "missing_field"),
    ("empty file", {"files": image_file(b"")}, 422, "invalid_image"),
    ("not an image", {"files": image_file(b"hello world, no pixels here", "text/plain")}, 415,
     "unsupported_media_type"),
    ("not an image, untyped", {"files": image_file(b"hello world", "application/octet-stream")},
     422, "invalid_image"),
    ("truncated", {"files": image_file(truncated_jpeg(), "image/jpeg")}, 422, "invalid_image"),
    ("too many bytes", {"files": image_file(b"\x89PNG" + bytes(300_000))}, 413,
     "image_too_large"),
    ("too many pixels", {"files": image_file(png_bytes(1200, 1000))}, 422, "too_many_pixels"),
    ("gif", {"files": image_file(png_bytes(10, 10, "GIF"), "image/gif")}, 415,
     "unsupported_media_type"),
    ("gif untyped", {"files": image_file(png_bytes(10, 10, "GIF"), "application/octet-stream")},
     415, "unsupported_media_type"),
    ("pdf, malformed", {"files": image_file(b"%PDF-1.7", "application/pdf")}, 422,
     "invalid_image"),
    ("pdf, password-protected", {"files": image_file(encrypted_pdf(), "application/pdf")}, 422,
     "encrypted_document"),
    # A letter page at the default 200 DPI is 1700 x 2200 pixels: over this stack's limit.
    ("pdf page over the pixel limit at the dpi", {"files": image_file(blank_pdf(612, 792),
     "application/pdf")}, 422, "too_many_pixels"),
    ("pdf with a huge page", {"files": image_file(blank_pdf(14_400, 14_400), "application/pdf")},
     422, "too_many_pixels"),
    ("pdf with a thousand pages", {"files": image_file(blank_pdf(100, 100, pages=1000),
     "application/pdf")}, 422, "too_many_pages"),
    ("pdf declared as png", {"files": image_file(encrypted_pdf(), "image/png")}, 422,
     "encrypted_document"),
    ("tiff with too many pages", {"files": image_file(tiff_pages(*[(8, 8)] * 101),
     "image/tiff")}, 422, "too_many_pages"),
    ("broken multipart", {"content": b"--x\r\nnonsense",
                          "headers": {"content-type": "multipart/form-data; boundary=x"}},
     422, "missing_field"),
]  # fmt: skip


@pytest.mark.parametrize(("request_kwargs", "status", "code"),
                         [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/ocr"])
async def test_bad_input_is_refused_and_stores_nothing(
    stack: Stack, path: str, request_kwargs: dict[str, object], status: int, code: str
) -> None:
    response = await stack.client.post(path, **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert stack.nothing_stored()
    assert (await stack.client.get("/healthz")).status_code == 200


async def test_decompression_bomb_is_refused_with_default_limits() -> None:
    stack = await make_stack()
    response = await stack.client.post("/v1/jobs", files=image_file(bomb_png()))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "too_many_pixels"
    assert stack.nothing_stored()


async def test_oversized_declared_length_is_refused_before_reading(stack: Stack) -> None:
    response = await stack.client.post(
        "/v1/jobs",
        content=b"x" * 10,
        headers={"content-type": "multipart/form-data; boundary=x",
                 "content-length": str(10**9)},
    )  # fmt: skip
    assert response.status_code == 413


async def test_sync_ocr_returns_the_finished_job() -> None:
    stack = await make_stack(instant=True)
    response = await stack.client.post("/v1/ocr", files=image_file(png_bytes(300, 80)))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["result"]["text"] == "hello\nworld"
    assert body["result"]["lines"][0] == {
        "text": "hello",
        "confidence": 0.97,
        "box": [[0, 0], [10, 0], [10, 5], [0, 5]],
    }
    # A single image is a document of one page, the size of the image.
    (page,) = body["result"]["pages"]
    assert (page["page"], page["width"], page["height"], page["source"]) == (1, 300, 80, "ocr")
    assert (page["text"], page["lines"]) == ("hello\nworld", body["result"]["lines"])
    assert body["finished_at"] is not None


async def test_a_pdf_is_one_job_sized_by_its_pages_at_the_dpi() -> None:
    stack = await make_stack(pdf_dpi=72)
    pdf = pdf_of_images([dark_square_page(100), dark_square_page(100)], dpi=72.0)
    response = await stack.client.post("/v1/jobs", files=image_file(pdf, "application/pdf"))
    assert response.status_code == 202, response.text
    (job,) = stack.repo.jobs.values()
    (message,) = stack.publisher.messages
    # The pages stacked: the worker's batches are sized by the whole document.
    assert (job.width, job.height) == (message.width, message.height) == (100, 200)
    assert list(stack.blobs.blobs.values()) == [pdf]


async def test_sync_ocr_times_out_with_the_job_id(stack: Stack) -> None:
    response = await stack.client.post("/v1/ocr?timeout=0.05", files=image_file(png_bytes()))
    assert response.status_code == 504
    body = response.json()
    assert body["error"]["code"] == "timeout"
    assert body["job_id"] in stack.repo.jobs
    polled = await stack.client.get(f"/v1/jobs/{body['job_id']}")
    assert polled.json()["status"] == "queued"


@pytest.mark.parametrize("timeout", ["0", "-1", "100000", "abc"])
async def test_sync_ocr_timeout_is_validated(stack: Stack, timeout: str) -> None:
    response = await stack.client.post(f"/v1/ocr?timeout={timeout}", files=image_file(png_bytes()))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert stack.nothing_stored()


async def test_api_keys() -> None:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    stack = await make_stack(api_key_hashes=[digest])
    files = image_file(png_bytes())
    missing = await stack.client.post("/v1/jobs", files=files)
    wrong = await stack.client.post("/v1/jobs", files=files,
                                    headers={"Authorization": "Bearer nope"})  # fmt: skip
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (await stack.client.get(f"/v1/jobs/{'0' * 32}")).status_code == 401
    assert stack.nothing_stored()
    ok = await stack.client.post("/v1/jobs", files=files,
                                 headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert ok.status_code == 202
    assert (await stack.client.get("/healthz")).status_code == 200


async def test_readiness_reflects_model_database_and_queue() -> None:
    ready = await make_stack()
    response = await ready.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"model": "ok", "database": "ok", "queue": "ok"},
    }
    loading = await make_stack(ready=False)
    assert (await loading.client.get("/readyz")).json()["checks"]["model"] == "failing"
    broken = await make_stack()
    broken.publisher.failure = ConnectionError("broker down")
    response = await broken.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["queue"] == "failing"


async def test_request_id_is_echoed_only_when_plain(stack: Stack) -> None:
    echoed = await stack.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    replaced = await stack.client.get("/healthz", headers={"X-Request-ID": "bad id\t<x>"})
    assert replaced.headers["x-request-id"] != "bad id\t<x>"
    missing = await stack.client.get("/no/such/route")
    assert missing.status_code == 404 and missing.headers["x-request-id"]


async def test_unexpected_errors_are_json_500_with_request_id(stack: Stack) -> None:
    async def explode(job_id: str) -> None:
        raise RuntimeError("disk on fire")

    stack.repo.get = explode  # type: ignore[method-assign]
    response = await stack.client.get(f"/v1/jobs/{'a' * 32}")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "fire" not in response.text
    assert response.headers["x-request-id"]


async def test_a_database_away_is_503_with_retry_after() -> None:
    repo = FakeRepository()

    async def away(job_id: str) -> None:
        # What the SQL repository raises at its boundary when the server is away.
        raise TransientError("OperationalError: (2003, database restarting)")

    repo.get = away  # type: ignore[method-assign]
    app = create_app(Settings(), repo, FakeBlobStore(), FakePublisher())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get(f"/v1/jobs/{'a' * 32}")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["retry-after"]) >= 1 and response.headers["x-request-id"]


async def test_metrics_count_requests_by_route(stack: Stack) -> None:
    await stack.client.get(f"/v1/jobs/{'0' * 32}")
    text = (await stack.client.get("/metrics")).text
    assert (
        'ocr_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="404"} 1.0' in text
    )
    assert "ocr_model_ready 1.0" in text


async def test_a_process_without_model_exports_no_model_gauge() -> None:
    app = create_app(Settings(), FakeRepository(), FakeBlobStore(), FakePublisher())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        text = (await client.get("/metrics")).text
        ready = (await client.get("/readyz")).json()
    assert "ocr_model_ready" not in text
    assert ready["checks"]["model"] == "n/a" and ready["ready"] is True


async def test_openapi_documents_the_contract(stack: Stack) -> None:
    spec = (await stack.client.get("/openapi.json")).json()
    post = spec["paths"]["/v1/jobs"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/JobAccepted"
    )
    assert {p["name"]: p["in"] for p in post["parameters"]} == {
        "Idempotency-Key": "header",
        "text_layer": "query",
    }
    ocr = spec["paths"]["/v1/ocr"]["post"]
    assert {"200", "413", "415", "422", "504"} <= set(ocr["responses"])
    timeout = next(p for p in ocr["parameters"] if p["name"] == "timeout")
    assert timeout["schema"]["maximum"] == Settings().sync_timeout_max_s
    assert "/readyz" in spec["paths"] and "/metrics" in spec["paths"]
