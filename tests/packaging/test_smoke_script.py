"""scripts/smoke_test.sh against the embedded all-in-one server (`ocr-runtime all-in-one`,
what `make run` starts): it passes on a healthy server and fails, naming the step, when the
server is unreachable or the result is not what the image shows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import REPO_ROOT, run
from tests.support.ports import free_port

SMOKE = REPO_ROOT / "scripts" / "smoke_test.sh"
START_TIMEOUT_S = 180.0

pytestmark = pytest.mark.integration


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def all_in_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("all-in-one")
    port = free_port()
    env = {
        **os.environ,
        "OCR_HTTP_PORT": str(port),
        "OCR_DATABASE_URL": f"sqlite+aiosqlite:///{state}/ocr.db",
        "OCR_BLOB_DIR": str(state / "blobs"),
    }
    log = (state / "server.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "ocr-runtime"), "all-in-one"],
        cwd=state,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ready(url):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(
                f"all-in-one did not become ready:\n{(state / 'server.log').read_text()[-3000:]}"
            )
        time.sleep(0.5)
    yield url
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_smoke_test_passes_against_the_all_in_one_server(all_in_one: str) -> None:
    done = run([SMOKE, all_in_one], timeout=200)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SMOKE TEST PASSED ({all_in_one})" in done.stdout
    assert "text: smoke test 4711" in done.stdout


def test_smoke_test_fails_when_the_text_is_not_recognised(all_in_one: str) -> None:
    done = run([SMOKE, all_in_one], timeout=200, env={**os.environ, "SMOKE_EXPECT": "4712"})
    assert done.returncode == 1
    assert "SMOKE TEST FAILED: result text does not contain '4712'" in done.stderr


def test_smoke_test_fails_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run([SMOKE, url], timeout=60)
    assert done.returncode == 1
    assert f"SMOKE TEST FAILED: GET /healthz: cannot connect to {url}" in done.stderr
