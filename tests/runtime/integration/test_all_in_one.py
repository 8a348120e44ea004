"""The all-in-one server as users run it: a real subprocess (`ocr-runtime all-in-one`) on the
real default engine, spoken to over HTTP like curl would."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.support.pdfs import text_pdf
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

LINES = ("Invoice number 48213", "Total amount due 1250 EUR")
STARTUP_LIMIT_S = 300  # model load on a busy 2-core machine


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"all-in-one exited early:\n{server.log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"all-in-one not ready in {STARTUP_LIMIT_S} s:\n"
                f"{server.log_path.read_text()[-4000:]}")  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("all-in-one")
    port = free_port()
    env = {
        **os.environ,
        "OCR_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'ocr.db'}",
        "OCR_HTTP_PORT": str(port),
        "OCR_ENGINE": "onnx",
    }
    log_path = work / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ocr_runtime.bootstrap", "all-in-one"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work,
        )  # fmt: skip
    started = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(started)
        yield started
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def page_image(lines: tuple[str, ...] = LINES) -> Image.Image:
    font = ImageFont.load_default(size=40)
    image = Image.new("RGB", (1100, 80 + 90 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for row, text in enumerate(lines):
        draw.text((40, 40 + 90 * row), text, fill="black", font=font)
    return image


def rendered_page() -> bytes:
    buffer = io.BytesIO()
    page_image().save(buffer, format="PNG")
    return buffer.getvalue()


PDF_PAGES = (("Invoice number 48213", "Total amount due 1250 EUR"), ("Payment due Seoul",))


def two_page_pdf() -> bytes:
    """Drawn at 200 pixels per inch: rendered at the default 200 DPI, each page comes back
    at the size it was drawn."""
    first, second = (page_image(lines) for lines in PDF_PAGES)
    buffer = io.BytesIO()
    first.save(buffer, format="PDF", save_all=True, append_images=[second], resolution=200.0)
    return buffer.getvalue()


def sync_ocr(server: Server, name: str, data: bytes, content_type: str) -> httpx.Response:
    """POST /v1/ocr, waiting up to two minutes for the real engine."""
    files = {"image": (name, data, content_type)}
    return httpx.post(f"{server.base_url}/v1/ocr", params={"timeout": 120}, files=files,
                      timeout=150)  # fmt: skip


def test_sync_ocr_reads_the_rendered_lines(server: Server) -> None:
    response = sync_ocr(server, "page.png", rendered_page(), "image/png")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert [line["text"] for line in body["result"]["lines"]] == list(LINES)
    assert body["result"]["text"] == "\n".join(LINES)
    assert response.headers["x-request-id"]


def test_async_job_is_polled_to_completion(server: Server) -> None:
    submitted = httpx.post(
        f"{server.base_url}/v1/jobs",
        files={"image": ("page.png", rendered_page(), "image/png")},
        headers={"Idempotency-Key": "it-async-1"},
        timeout=30,
    )
    assert submitted.status_code == 202
    job_id = submitted.json()["job_id"]
    deadline = time.monotonic() + 120
    status = "queued"
    while status in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.2)
        status = httpx.get(f"{server.base_url}/v1/jobs/{job_id}", timeout=10).json()["status"]
    assert status == "succeeded"
    again = httpx.post(
        f"{server.base_url}/v1/jobs",
        files={"image": ("page.png", rendered_page(), "image/png")},
        headers={"Idempotency-Key": "it-async-1"},
        timeout=30,
    )
    assert again.json() == {"job_id": job_id, "status": "succeeded"}


def test_bad_input_leaves_the_server_healthy(server: Server) -> None:
    bad = httpx.post(
        f"{server.base_url}/v1/jobs",
        files={"image": ("x.png", b"definitely not a png", "image/png")},
        timeout=30,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_image"
    assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{server.base_url}/readyz", timeout=10).json()
    assert ready["ready"] is True
    # The model served, as the worker role reports it: the wheel's models by default.
    assert set(ready["model"]) == {"name", "version", "checksum"}
    assert len(ready["model"]["checksum"]) == 64
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    assert "ocr_batch_size_count" in metrics and "ocr_http_requests_total" in metrics


def test_a_pdf_gives_text_per_page(server: Server) -> None:
    response = sync_ocr(server, "invoice.pdf", two_page_pdf(), "application/pdf")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    pages = result["pages"]
    assert [page["page"] for page in pages] == [1, 2]
    # PDF sizes are in points (1/72 inch): a pixel may be gained in rounding.
    sizes = [(page["width"], page["height"]) for page in pages]
    assert all(
        abs(w - dw) <= 1 and abs(h - dh) <= 1
        for (w, h), (dw, dh) in zip(sizes, [(1100, 260), (1100, 170)], strict=True)
    )
    assert [[ln["text"] for ln in page["lines"]] for page in pages] == [list(p) for p in PDF_PAGES]
    assert [page["source"] for page in pages] == ["ocr", "ocr"]
    assert result["text"] == "\f".join("\n".join(p) for p in PDF_PAGES)
    # Boxes are in their own page's pixels: the second page's line is near its top.
    (line,) = pages[1]["lines"]
    assert all(-2 <= x <= 1102 and -2 <= y <= 130 for x, y in line["box"]), line["box"]
    assert result["lines"] == pages[0]["lines"] + pages[1]["lines"]


def test_a_pdf_text_layer_is_read_when_preferred_and_recognised_otherwise(
    server: Server,
) -> None:
    data = text_pdf(PDF_PAGES[0], [], width_pt=500, height_pt=200)
    files = {"image": ("typed.pdf", data, "application/pdf")}
    preferred = httpx.post(f"{server.base_url}/v1/ocr", files=files, timeout=150,
                           params={"timeout": 120, "text_layer": "prefer"})  # fmt: skip
    assert preferred.status_code == 200, preferred.text
    pages = preferred.json()["result"]["pages"]
    assert [page["source"] for page in pages] == ["text_layer", "ocr"]
    assert [ln["text"] for ln in pages[0]["lines"]] == list(PDF_PAGES[0])
    assert pages[1]["lines"] == []  # a page without text was recognised: it is blank

    recognised = sync_ocr(server, "typed.pdf", data, "application/pdf")
    assert recognised.status_code == 200, recognised.text
    pages = recognised.json()["result"]["pages"]
    assert [page["source"] for page in pages] == ["ocr", "ocr"]
    assert [ln["text"] for ln in pages[0]["lines"]] == list(PDF_PAGES[0])

    bad = httpx.post(f"{server.base_url}/v1/jobs", files=files, params={"text_layer": "always"},
                     timeout=30)  # fmt: skip
    assert bad.status_code == 422


def test_sigterm_stops_it_cleanly(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert server.process.wait(60) in {0, -signal.SIGTERM}
    assert "Application shutdown complete" in server.log_path.read_text()
