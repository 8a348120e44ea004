"""s3.sh, a second server beside the shared one (its own `.local` and port, the shared jar
cache): it listens on loopback only, answers only requests signed with AWS Signature V4 by
the key pair it wrote to `.local/env`, survives a second `up`, and `down` leaves no process
and no listener; the key pair and the objects outlive a restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from ocr_runtime.adapters.sigv4 import S3Credentials, signed_headers
from tests.conftest import REPO_ROOT, read_local_env
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

SCRIPT = REPO_ROOT / "scripts" / "infra" / "s3.sh"
# The first start may resolve the jars with mvn.
START_TIMEOUT_S = 600


@dataclass(frozen=True)
class Instance:
    """A server run by s3.sh from its own `.local`."""

    local: Path
    port: int

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OCR_LOCAL_DIR": str(self.local), "OCR_S3_PORT": str(self.port)}
        return subprocess.run(
            [str(SCRIPT), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )

    def pid(self) -> int:
        return int((self.local / "run" / "s3proxy.pid").read_text().strip())

    def env(self) -> dict[str, str]:
        return read_local_env(self.local / "env")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _status(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> int:
    request = urllib.request.Request(url, data=body or None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _signed(method: str, url: str, credentials: S3Credentials, body: bytes = b"") -> int:
    headers = signed_headers(
        method,
        url,
        credentials,
        at=datetime.now(UTC),
        payload_sha256=hashlib.sha256(body).hexdigest(),
        headers={"Content-Type": "application/octet-stream"},
    )
    return _status(method, url, headers, body)


def _signed_v2(url_path: str, url: str, credentials: S3Credentials) -> int:
    """A GET with a correct AWS Signature Version 2, which a SigV4-only server refuses."""
    date = format_datetime(datetime.now(UTC), usegmt=True)
    to_sign = f"GET\n\n\n{date}\n{url_path}".encode()
    digest = hmac.new(credentials.secret_access_key.encode(), to_sign, hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    headers = {"Date": date, "Authorization": f"AWS {credentials.access_key_id}:{signature}"}
    return _status("GET", url, headers)


def _listeners(port: int) -> list[str]:
    """The local addresses listening on `port` (Java's IPv4-mapped form unwrapped)."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3].replace("[::ffff:", "").replace("]", "") for line in out.splitlines()]


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    server = Instance(tmp_path / "local", free_port())
    yield server
    server.run("down")


def test_up_serves_signed_requests_only_and_down_leaves_nothing(instance: Instance) -> None:
    first = instance.run("up")
    assert first.returncode == 0, first.stderr
    env = instance.env()
    endpoint = f"http://127.0.0.1:{instance.port}"
    assert env["OCR_TEST_S3_ENDPOINT"] == endpoint
    assert env["OCR_TEST_S3_BUCKET"] == "ocr-models"
    credentials = S3Credentials(
        env["OCR_TEST_S3_ACCESS_KEY_ID"], env["OCR_TEST_S3_SECRET_ACCESS_KEY"]
    )
    assert _listeners(instance.port) == [f"127.0.0.1:{instance.port}"]
    object_url = f"{endpoint}/ocr-models/probe.txt"
    assert _signed("PUT", object_url, credentials, b"kept across restarts") == 200
    assert _signed("GET", object_url, credentials) == 200
    assert _status("GET", object_url, {}) == 403  # the bucket is not public
    wrong = S3Credentials(credentials.access_key_id, "not-the-secret")
    assert _signed("GET", object_url, wrong) == 403
    # A correct Signature Version 2 (accepted by S3Proxy under aws-v2-or-v4) is refused.
    assert _signed_v2("/ocr-models/probe.txt", object_url, credentials) == 403

    pid = instance.pid()
    again = instance.run("up")
    assert again.returncode == 0 and "already running" in again.stderr
    assert instance.pid() == pid
    assert instance.run("status").returncode == 0

    down = instance.run("down")
    assert down.returncode == 0, down.stderr
    assert not _alive(pid)
    assert not (instance.local / "run" / "s3proxy.pid").exists()
    assert _listeners(instance.port) == []
    assert instance.run("status").returncode == 1

    restarted = instance.run("up")
    assert restarted.returncode == 0, restarted.stderr
    assert instance.env()["OCR_TEST_S3_SECRET_ACCESS_KEY"] == credentials.secret_access_key
    assert _signed("GET", object_url, credentials) == 200
