"""The security of every Kafka connection of a process (producer, consumer, admin): TLS with
an optional CA and client certificate, SASL (SCRAM or PLAIN) login.

aiokafka reports a refused login or an untrusted certificate as "Unable to bootstrap", the
same error as a broker that is still starting, which callers rightly retry. `started` tells
them apart: when a client cannot bootstrap it opens one connection itself and, if the broker
refused the credentials or the certificate, raises `KafkaAccessDenied`, a permanent error
that names the settings to fix."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from ocr_contract import KafkaSecurityProtocol, SaslMechanism
from ocr_runtime.application.errors import AccessDenied
from ocr_runtime.core.settings import Settings

_DIAGNOSIS_TIMEOUT_MS = 10_000
_REFUSED_LOGIN = (SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError)


class KafkaAccessDenied(AccessDenied):
    """The broker refused this process's credentials or certificate: retrying cannot help,
    the configuration must change."""


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: KafkaSecurityProtocol = KafkaSecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        password = settings.kafka_sasl_password
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=None if password is None else password.get_secret_value(),
            ca_file=settings.kafka_ssl_ca_file,
            cert_file=settings.kafka_ssl_cert_file,
            key_file=settings.kafka_ssl_key_file,
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        options: dict[str, Any] = {"security_protocol": self.protocol.value}
        if self.protocol.uses_tls:
            options["ssl_context"] = self._ssl_context()
        if self.protocol.uses_sasl:
            options.update(
                sasl_mechanism=self.sasl_mechanism.value,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        return options

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=None if self.ca_file is None else str(self.ca_file)
        )
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), None if self.key_file is None else str(self.key_file)
            )
        return context

    async def started(
        self,
        bootstrap: str,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
    ) -> None:
        """Run a client's `start` (and its `stop` when that fails, so that no half-started
        client is left behind); a refused login or certificate raises KafkaAccessDenied
        instead of the retriable "Unable to bootstrap"."""
        try:
            try:
                await start()
            except KafkaConnectionError:
                await self.check_access(bootstrap)
                raise
        except BaseException:
            await stop()
            raise

    async def check_access(self, bootstrap: str) -> None:
        """KafkaAccessDenied when the first bootstrap server refuses this identity; nothing
        when it accepts it or cannot be reached (that is not an access problem)."""
        if self.protocol is KafkaSecurityProtocol.PLAINTEXT:
            return
        host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
        options = self.client_options()
        try:
            conn = await create_conn(
                host, int(port), request_timeout_ms=_DIAGNOSIS_TIMEOUT_MS, **options
            )
        except _REFUSED_LOGIN as exc:
            raise KafkaAccessDenied(
                f"Kafka at {host}:{port} refused the {self.sasl_mechanism.value} login of user "
                f"{self.username!r}: {exc}; check OCR_KAFKA_SASL_USERNAME, "
                "OCR_KAFKA_SASL_PASSWORD and OCR_KAFKA_SASL_MECHANISM"
            ) from exc
        except ssl.SSLError as exc:
            raise KafkaAccessDenied(
                f"TLS with Kafka at {host}:{port} failed: {exc}; check OCR_KAFKA_SSL_CA_FILE "
                "(and OCR_KAFKA_SSL_CERT_FILE / OCR_KAFKA_SSL_KEY_FILE for mTLS)"
            ) from exc
        except Exception:  # unreachable, timed out: the caller's retry decides
            return
        conn.close()


PLAINTEXT = KafkaSecurity()
