"""The operator's own Kafka clients over the local SASL_SSL listener (SCRAM-SHA-512), with the
security settings it reads from OCR_OPERATOR_KAFKA_*."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from ocr_operator.kafka_topics import KafkaTopicAdmin, KafkaUnavailableError, partition_counts
from ocr_operator.ports import TopicRequest
from ocr_operator.settings import OperatorSettings
from tests.conftest import SecureKafka


def _settings(kafka: SecureKafka, password: str) -> OperatorSettings:
    return OperatorSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username=kafka.username,
        kafka_sasl_password=password,
        kafka_ssl_ca_file=kafka.ca_file,
    )


@pytest.mark.integration
async def test_topics_are_created_and_lag_read_over_sasl_ssl(kafka_secure: SecureKafka) -> None:
    options = _settings(kafka_secure, kafka_secure.password).kafka_client_options()
    admin = KafkaTopicAdmin(options)
    name = f"op-secure-{uuid.uuid4().hex[:8]}"
    report = await admin.ensure(kafka_secure.bootstrap, [TopicRequest(name, 2, 1, {})])
    assert report.created == (name,)
    assert await partition_counts(kafka_secure.bootstrap, [name], options) == {name: 2}
    assert await admin.lag(kafka_secure.bootstrap, "op-secure-group", name) == 0


@pytest.mark.integration
async def test_a_wrong_password_is_reported_as_kafka_unavailable(
    kafka_secure: SecureKafka,
) -> None:
    admin = KafkaTopicAdmin(_settings(kafka_secure, "wrong").kafka_client_options())
    with pytest.raises(KafkaUnavailableError, match="refused the operator's login"):
        await admin.ensure(kafka_secure.bootstrap, [TopicRequest("op-never", 1, 1, {})])


def test_sasl_without_credentials_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="needs OCR_OPERATOR_KAFKA_SASL_USERNAME"):
        OperatorSettings(kafka_security_protocol="SASL_SSL")


def test_plaintext_passes_only_the_protocol() -> None:
    assert OperatorSettings().kafka_client_options() == {"security_protocol": "PLAINTEXT"}
