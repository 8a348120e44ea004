"""The runtime's processes over the broker's SASL_SSL listener (SCRAM-SHA-512): jobs go
through API, worker and writer (every producer, consumer and admin client of the data
plane), and a process with a wrong password exits at start with `KafkaAccessDenied`
instead of retrying."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import SecureKafka
from tests.dataplane.conftest import Stack
from tests.dataplane.support import assert_exactly_one_result_each, submit_jobs

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


def test_a_wrong_password_stops_the_worker_with_a_readable_error(
    stack: Stack, kafka_secure: SecureKafka
) -> None:
    worker = stack.launch("worker", "standard", **_secure_env(kafka_secure, "not-the-password"))
    assert worker.popen is not None
    code = worker.popen.wait(timeout=EXIT_PATIENCE_S)
    log = worker.tail(80)
    assert code != 0, log
    assert "KafkaAccessDenied" in log, log
    assert f"refused the SCRAM-SHA-512 login of user '{kafka_secure.username}'" in log, log
    assert "not-the-password" not in log
