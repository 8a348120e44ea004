"""Kafka security settings: bad combinations are refused at start with the names of the
settings to fix, and the clients get exactly the options the protocol calls for."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from ocr_contract import KafkaSecurityProtocol, SaslMechanism
from ocr_runtime.adapters.kafka import KafkaSecurity
from ocr_runtime.core.settings import Settings


@pytest.fixture(autouse=True)
def _no_ocr_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROTOCOL", "MECHANISM", "USERNAME", "PASSWORD"):
        monkeypatch.delenv(f"OCR_KAFKA_SECURITY_{name}", raising=False)
        monkeypatch.delenv(f"OCR_KAFKA_SASL_{name}", raising=False)


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("not parsed by the settings\n", encoding="utf-8")
    return path


def test_plaintext_is_the_default_and_passes_only_the_protocol() -> None:
    settings = Settings()
    assert settings.kafka_security_protocol is KafkaSecurityProtocol.PLAINTEXT
    assert settings.kafka_sasl_mechanism is SaslMechanism.SCRAM_SHA_512
    assert KafkaSecurity.from_settings(settings).client_options() == {
        "security_protocol": "PLAINTEXT"
    }


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_without_credentials_is_refused(protocol: str) -> None:
    with pytest.raises(ValidationError, match="needs OCR_KAFKA_SASL_USERNAME and OCR_KAFKA_SASL"):
        Settings(kafka_security_protocol=protocol, kafka_sasl_password="secret")


def test_tls_files_without_tls_are_refused(ca_file: Path) -> None:
    with pytest.raises(ValidationError, match=r"OCR_KAFKA_SSL_CA_FILE set but .*=PLAINTEXT"):
        Settings(kafka_ssl_ca_file=ca_file)


def test_a_client_certificate_needs_its_key(ca_file: Path) -> None:
    with pytest.raises(ValidationError, match="CERT_FILE and OCR_KAFKA_SSL_KEY_FILE go together"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_cert_file=ca_file)


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"OCR_KAFKA_SSL_CA_FILE=.*missing\.pem is not"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=tmp_path / "missing.pem")


def test_an_unknown_mechanism_is_refused() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_mechanism"):
        Settings(kafka_sasl_mechanism="GSSAPI")


PASSWORD = "pa55-w0rd-9f3e"


def test_sasl_ssl_passes_credentials_and_a_verifying_tls_context() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="stack-a",
        kafka_sasl_password=PASSWORD,
    )
    security = KafkaSecurity.from_settings(settings)
    options = security.client_options()
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "stack-a",
        "sasl_plain_password": PASSWORD,
    }
    # A value no field name contains: the repr must not show it.
    assert PASSWORD not in repr(security) and PASSWORD not in repr(settings)
