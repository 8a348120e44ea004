"""Bounded memory in the API, on the real stack: uploads held in memory at once are limited
(the limit follows the CPU quota and is exported as `ocr_upload_slots`); one more waits
briefly for a slot, then gets 503 with Retry-After; once the slow uploads go away the API
accepts again."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.dataplane.conftest import Stack
from tests.dataplane.support import metric_value, png, wait_until

pytestmark = pytest.mark.integration

BOUNDARY = "slowloris"


def stalled_upload(api_url: str) -> socket.socket:
    """A client that announces a 1 MB upload, sends its first bytes and then stalls."""
    parts = urlsplit(api_url)
    conn = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.png"'
        "\r\nContent-Type: image/png\r\n\r\n"
    ).encode()
    conn.sendall(
        (
            "POST /v1/jobs HTTP/1.1\r\nHost: api\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            "Content-Length: 1000000\r\n\r\n"
        ).encode()
        + head
        + b"\x89PNG"
    )
    return conn


def post(api_url: str) -> httpx.Response:
    with httpx.Client(base_url=api_url, timeout=30.0) as client:
        return client.post("/v1/jobs", files={"image": ("a.png", png(3), "image/png")})


def test_excess_uploads_wait_then_get_503_with_retry_after(stack: Stack) -> None:
    api = stack.start("api", "batched")
    slots = int(metric_value(api.metrics(), "ocr_upload_slots"))
    assert slots >= 1, "the API exports no upload limit"
    stalled = [stalled_upload(api.url) for _ in range(slots)]
    try:
        wait_until(
            lambda: metric_value(api.metrics(), "ocr_uploads_in_progress") == slots, 30,
            "every slot taken by a stalled upload",
        )  # fmt: skip
        refused = post(api.url)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "overloaded"
        assert int(refused.headers["Retry-After"]) >= 1
    finally:
        for conn in stalled:
            conn.close()
    wait_until(lambda: metric_value(api.metrics(), "ocr_uploads_in_progress") == 0, 30,
               "the stalled uploads to give their slots back")  # fmt: skip
    assert post(api.url).status_code == 202
