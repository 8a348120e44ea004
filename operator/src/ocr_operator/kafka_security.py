"""TLS and SASL of the operator's own Kafka clients (topic admin, lag readings), from
`OCR_OPERATOR_KAFKA_*` settings: the operator never reads the Secrets of the stacks, so it
gets its own identity, with the rights of a topic administrator."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from ocr_contract import KafkaSecurityProtocol, SaslMechanism


class KafkaClientSettings(BaseSettings):
    """Base of OperatorSettings: the Kafka client fields, read with its prefix."""

    kafka_security_protocol: KafkaSecurityProtocol = Field(
        KafkaSecurityProtocol.PLAINTEXT,
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL for the operator's admin client.",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        SaslMechanism.SCRAM_SHA_512, description="SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user of the operator.")
    kafka_sasl_password: SecretStr | None = Field(None, description="Its SASL password.")
    kafka_ssl_ca_file: Path | None = Field(None, description="PEM CA bundle of the brokers.")
    kafka_ssl_cert_file: Path | None = Field(None, description="PEM client certificate (mTLS).")
    kafka_ssl_key_file: Path | None = Field(None, description="PEM key of the certificate.")

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> KafkaClientSettings:
        protocol = self.kafka_security_protocol
        if protocol.uses_sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"OCR_OPERATOR_KAFKA_SECURITY_PROTOCOL={protocol.value} needs "
                "OCR_OPERATOR_KAFKA_SASL_USERNAME and OCR_OPERATOR_KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ValueError(
                "OCR_OPERATOR_KAFKA_SSL_CERT_FILE and OCR_OPERATOR_KAFKA_SSL_KEY_FILE go together"
            )
        return self

    def kafka_client_options(self) -> dict[str, Any]:
        """Keyword arguments of the aiokafka admin client and consumer."""
        protocol = self.kafka_security_protocol
        options: dict[str, Any] = {"security_protocol": protocol.value}
        if protocol in (KafkaSecurityProtocol.SSL, KafkaSecurityProtocol.SASL_SSL):
            ca = self.kafka_ssl_ca_file
            context = ssl.create_default_context(cafile=None if ca is None else str(ca))
            if self.kafka_ssl_cert_file is not None:
                key = self.kafka_ssl_key_file
                context.load_cert_chain(str(self.kafka_ssl_cert_file), str(key) if key else None)
            options["ssl_context"] = context
        if protocol.uses_sasl and self.kafka_sasl_password is not None:
            options.update(
                sasl_mechanism=self.kafka_sasl_mechanism.value,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password.get_secret_value(),
            )
        return options


async def refusal(bootstrap: str, options: Mapping[str, Any]) -> str | None:
    """Why the first bootstrap server refuses the operator's login or certificate: aiokafka
    reports both as "Unable to bootstrap", like a broker that is away. None when it accepts
    them or cannot be reached."""
    if options.get("security_protocol", "PLAINTEXT") == "PLAINTEXT":
        return None
    host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
    try:
        conn = await create_conn(host, int(port), request_timeout_ms=10_000, **options)
    except (SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError) as exc:
        return (
            f"the broker refused the operator's login ({exc}); check "
            "OCR_OPERATOR_KAFKA_SASL_USERNAME, _SASL_PASSWORD and _SASL_MECHANISM"
        )
    except ssl.SSLError as exc:
        return f"TLS with the broker failed ({exc}); check OCR_OPERATOR_KAFKA_SSL_CA_FILE"
    except Exception:  # away or timed out: not a matter of identity
        return None
    conn.close()
    return None
