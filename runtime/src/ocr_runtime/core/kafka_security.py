"""How a runtime process authenticates to Kafka and protects the connection: the enums of
the `OCR_KAFKA_SECURITY_PROTOCOL` and `OCR_KAFKA_SASL_MECHANISM` settings and the checks
that reject, at start, a combination that could only fail later on the wire."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from ocr_contract import KafkaSecurityProtocol


def check_kafka_security(
    protocol: KafkaSecurityProtocol,
    *,
    username: str | None,
    password: SecretStr | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
) -> None:
    """ValueError naming the settings to fix."""
    if protocol.uses_sasl and not (username and password and password.get_secret_value()):
        raise ValueError(
            f"OCR_KAFKA_SECURITY_PROTOCOL={protocol.value} needs OCR_KAFKA_SASL_USERNAME "
            "and OCR_KAFKA_SASL_PASSWORD"
        )
    tls_files = {
        "OCR_KAFKA_SSL_CA_FILE": ca_file,
        "OCR_KAFKA_SSL_CERT_FILE": cert_file,
        "OCR_KAFKA_SSL_KEY_FILE": key_file,
    }
    given = [name for name, path in tls_files.items() if path is not None]
    if given and not protocol.uses_tls:
        raise ValueError(
            f"{', '.join(given)} set but OCR_KAFKA_SECURITY_PROTOCOL={protocol.value} does "
            "not use TLS (SSL or SASL_SSL)"
        )
    if (cert_file is None) != (key_file is None):
        raise ValueError("OCR_KAFKA_SSL_CERT_FILE and OCR_KAFKA_SSL_KEY_FILE go together")
    for name, path in tls_files.items():
        if path is not None and not path.is_file():
            raise ValueError(f"{name}={path} is not a readable file")
