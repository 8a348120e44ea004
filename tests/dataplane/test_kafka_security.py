"""The runtime's processes over the broker's SASL_SSL listener (SCRAM-SHA-512): jobs go
through API, worker and writer (every producer, consumer and admin client of the data
plane), and a process with a wrong password exits at start with `access denied` (status 6),
never answering Ready, instead of retrying."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from ocr_runtime.bootstrap.cli import EXIT_ACCESS_DENIED
from tests.conftest import SecureKafka
from tests.dataplane.conftest import Stack
from tests.dataplane.support import RuntimeProcess, assert_exactly_one_result_each, submit_jobs

pytestmark = pytest.mark.integration

JOBS = 20
EXIT_PATIENCE_S = 120.0


def _secure_env(kafka: SecureKafka, password: str) -> dict[str, str]:
    return {
        "OCR_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "OCR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "OCR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "OCR_KAFKA_SASL_USERNAME": kafka.username,
        "OCR_KAFKA_SASL_PASSWORD": password,
        "OCR_KAFKA_SSL_CA_FILE": str(kafka.ca_file),
    }


def test_writer_mode_runs_end_to_end_over_sasl_ssl(stack: Stack, kafka_secure: SecureKafka) -> None:
    env = _secure_env(kafka_secure, kafka_secure.password)
    plane = [stack.launch(role, "writer", **env) for role in ("api", "worker", "writer")]
    for process in plane:
        process.wait_ready()
    ids = asyncio.run(submit_jobs(plane[0].url, JOBS))
    assert len(ids) == JOBS
    stack.db.wait_all_done(ids)
    assert_exactly_one_result_each(stack.db, ids)


def _readiness_until_exit(process: RuntimeProcess, patience_s: float) -> tuple[int, set[int]]:
    """The exit code and every /readyz status the process answered while it ran."""
    assert process.popen is not None
    answered: set[int] = set()
    deadline = time.monotonic() + patience_s
    while process.popen.poll() is None and time.monotonic() < deadline:
        # TransportError: the probe server is not listening yet, or already closed.
        with contextlib.suppress(httpx.TransportError):
            answered.add(httpx.get(f"{process.url}/readyz", timeout=2.0).status_code)
        time.sleep(0.05)
    return process.popen.wait(timeout=5), answered


@pytest.mark.parametrize("role", ["api", "worker", "writer"])
def test_a_wrong_password_stops_the_process_with_a_readable_error_never_ready(
    stack: Stack, kafka_secure: SecureKafka, role: str
) -> None:
    process = stack.launch(role, "writer", **_secure_env(kafka_secure, "not-the-password"))
    code, answered = _readiness_until_exit(process, EXIT_PATIENCE_S)
    log = process.tail(80)
    assert code == EXIT_ACCESS_DENIED, log
    # Never Ready: a kubelet probing then would have counted a pod that cannot work as
    # available. The worker's and writer's probes answer from the start (the API's only
    # once it started, which it never does here).
    assert 200 not in answered, (answered, log)
    if role != "api":
        assert answered == {503}, (answered, log)
    assert f"ocr-runtime: access denied: Kafka at {kafka_secure.bootstrap} refused" in log, log
    assert f"refused the SCRAM-SHA-512 login of user '{kafka_secure.username}'" in log, log
    assert "not-the-password" not in log
