"""Kafka over the local broker's SASL_SSL listener (SCRAM-SHA-512): the runtime's own
composition (settings -> producer, admin, consumer) carries a job through, and a wrong
password or an untrusted certificate stops the process with a permanent error that names
the settings to fix instead of being retried."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from ocr_runtime.adapters.kafka import (
    KafkaAccessDenied,
    KafkaJobPublisher,
    KafkaProducerClient,
    delete_topics,
)
from ocr_runtime.adapters.kafka.security import KafkaSecurity
from ocr_runtime.application import JobMessage
from ocr_runtime.application.errors import PermanentError
from ocr_runtime.application.stream import Delivery, PartitionKey
from ocr_runtime.bootstrap._dataplane import (
    prepare_topics,
    producer_options,
    record_source,
    until_reachable,
)
from ocr_runtime.core.settings import Settings
from tests.conftest import SecureKafka

pytestmark = pytest.mark.integration

FETCH_PATIENCE_S = 60.0


def _settings(kafka: SecureKafka, *, password: str | None = None, mtls: bool = False) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return Settings(
        kafka_bootstrap=kafka.bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=kafka.username,
        kafka_sasl_password=password or kafka.password,
        kafka_ssl_ca_file=kafka.ca_file,
        kafka_ssl_cert_file=kafka.cert_file if mtls else None,
        kafka_ssl_key_file=kafka.key_file if mtls else None,
        jobs_topic=f"sec-jobs-{suffix}",
        results_topic=f"sec-results-{suffix}",
        dead_letter_topic=f"sec-dlq-{suffix}",
        consumer_group=f"sec-workers-{suffix}",
        kafka_partitions=1,
    )


async def _no_revoke(_keys: frozenset[PartitionKey]) -> None:
    return None


async def _publish_and_consume(settings: Settings) -> list[Delivery]:
    await prepare_topics(settings)
    client = KafkaProducerClient(producer_options(settings, "api"))
    source = record_source(
        settings, settings.jobs_topic, settings.consumer_group, "worker", batch_wait_ms=0
    )
    try:
        await until_reachable(client.start, "Kafka")
        await KafkaJobPublisher(client, settings.jobs_topic).publish(
            JobMessage("job-1", "blob-1", 3, 2, submitted_at=time.time())
        )
        await source.start(_no_revoke)
        received: list[Delivery] = []
        async with asyncio.timeout(FETCH_PATIENCE_S):
            while not received:
                received.extend(await source.fetch(10))
        return received
    finally:
        await source.stop()
        await client.stop()
        await delete_topics(
            settings.kafka_bootstrap,
            [settings.jobs_topic, settings.results_topic, settings.dead_letter_topic],
            security=KafkaSecurity.from_settings(settings),
        )


@pytest.mark.parametrize("mtls", [False, True], ids=["scram", "scram+client-cert"])
async def test_a_job_travels_through_the_sasl_ssl_listener(
    kafka_secure: SecureKafka, mtls: bool
) -> None:
    received = await _publish_and_consume(_settings(kafka_secure, mtls=mtls))
    assert [(d.key, JobMessage.from_bytes(d.value).blob_id) for d in received] == [
        (b"job-1", "blob-1")
    ]


async def test_a_wrong_password_is_a_permanent_readable_error(kafka_secure: SecureKafka) -> None:
    settings = _settings(kafka_secure, password="not-the-password")
    client = KafkaProducerClient(producer_options(settings, "api"))
    # until_reachable retries transient errors only: this must come out at the first try.
    with pytest.raises(KafkaAccessDenied) as denied:
        await until_reachable(client.start, "Kafka")
    assert isinstance(denied.value, PermanentError)
    message = str(denied.value)
    assert f"refused the SCRAM-SHA-512 login of user '{kafka_secure.username}'" in message
    assert "OCR_KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message
    with pytest.raises(KafkaAccessDenied):
        await prepare_topics(settings)


async def test_an_untrusted_broker_certificate_is_a_permanent_readable_error(
    kafka_secure: SecureKafka, tmp_path: Path
) -> None:
    # A CA that did not sign the broker's certificate: any PEM certificate will do.
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(kafka_secure.cert_file.read_bytes())
    settings = _settings(kafka_secure).model_copy(update={"kafka_ssl_ca_file": other_ca})
    source = record_source(settings, "sec-unused", "sec-unused", "worker", batch_wait_ms=0)
    with pytest.raises(KafkaAccessDenied, match="OCR_KAFKA_SSL_CA_FILE"):
        await until_reachable(lambda: source.start(_no_revoke), "Kafka")
