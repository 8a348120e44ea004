"""`spec.kafka.security`: how the stack's pods authenticate to Kafka and protect the
connection. Credentials and the CA stay in Secrets that the pods reference; the operator
never reads them."""

from __future__ import annotations

from pydantic import Field

from ocr_contract import KafkaSecurityProtocol, SaslMechanism
from ocr_operator.model._base import SecretKey, SecretName, WireModel, cel

_SASL = "self.protocol in ['SASL_PLAINTEXT', 'SASL_SSL']"


class KafkaSecretKeyRef(WireModel):
    """A key of a Secret in the resource's namespace."""

    name: SecretName = Field(description="Secret name.")
    key: SecretKey = Field(description="Key in the Secret.")


class KafkaCaSecretRef(WireModel):
    """The Secret key holding the PEM CA bundle that signed the brokers' certificates."""

    name: SecretName = Field(
        description="Secret name (with Strimzi: <cluster>-cluster-ca-cert, copied into this "
        "namespace)."
    )
    key: SecretKey = Field("ca.crt", description="Key in the Secret.")


class KafkaClientCertSecretRef(WireModel):
    """The Secret holding the stack's client certificate and key (PEM) for mutual TLS."""

    name: SecretName = Field(
        description="Secret name (a kubernetes.io/tls Secret, or with Strimzi the Secret of "
        "a KafkaUser with authentication tls: certKey user.crt, keyKey user.key)."
    )
    cert_key: SecretKey = Field("tls.crt", description="Key of the PEM certificate.")
    key_key: SecretKey = Field("tls.key", description="Key of the PEM private key.")


class KafkaSecuritySpec(
    WireModel,
    json_schema_extra=cel(
        (
            "has(self.usernameSecretRef) == has(self.passwordSecretRef)",
            "kafka.security.usernameSecretRef and passwordSecretRef go together",
        ),
        (
            f"!has(self.usernameSecretRef) || {_SASL}",
            "kafka.security.usernameSecretRef needs protocol SASL_PLAINTEXT or SASL_SSL",
        ),
        (
            "!has(self.caSecretRef) || self.protocol in ['SSL', 'SASL_SSL']",
            "kafka.security.caSecretRef needs protocol SSL or SASL_SSL",
        ),
        (
            "!has(self.clientCertSecretRef) || self.protocol in ['SSL', 'SASL_SSL']",
            "kafka.security.clientCertSecretRef needs protocol SSL or SASL_SSL",
        ),
    ),
):
    """TLS and SASL of every Kafka client of the stack (api, worker, writer)."""

    protocol: KafkaSecurityProtocol = Field(
        KafkaSecurityProtocol.PLAINTEXT,
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    sasl_mechanism: SaslMechanism = Field(
        SaslMechanism.SCRAM_SHA_512,
        description="SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (SASL protocols).",
    )
    username_secret_ref: KafkaSecretKeyRef | None = Field(
        None,
        description="Secret key holding the SASL user name. Unset with a SASL protocol: "
        "kafka.management must be Strimzi with SCRAM-SHA-512, and the operator renders a "
        "KafkaUser named <name>-kafka whose Secret the pods use.",
    )
    password_secret_ref: KafkaSecretKeyRef | None = Field(
        None, description="Secret key holding the SASL password (with usernameSecretRef)."
    )
    ca_secret_ref: KafkaCaSecretRef | None = Field(
        None,
        description="Secret key of the CA bundle (SSL, SASL_SSL), mounted read-only into "
        "the pods; unset: with kafka.management Strimzi the cluster CA Secret "
        "<strimziCluster>-cluster-ca-cert (key ca.crt), otherwise the image's system CAs.",
    )
    client_cert_secret_ref: KafkaClientCertSecretRef | None = Field(
        None,
        description="Client certificate and key for mutual TLS (SSL, SASL_SSL), mounted "
        "read-only into the pods; unset: no client certificate is presented.",
    )

    @property
    def strimzi_user(self) -> bool:
        """SASL without credentials of its own: the stack's KafkaUser provides them."""
        return self.protocol.uses_sasl and self.username_secret_ref is None


# The CEL rule of spec.kafka that needs both management and security.
KAFKA_SECURITY_RULE = (
    "!has(self.security) || !(self.security.protocol in ['SASL_PLAINTEXT', 'SASL_SSL'])"
    " || has(self.security.usernameSecretRef)"
    " || (self.management == 'Strimzi' && self.security.saslMechanism == 'SCRAM-SHA-512')",
    "kafka.security with a SASL protocol needs usernameSecretRef and passwordSecretRef, "
    "unless kafka.management is Strimzi with saslMechanism SCRAM-SHA-512 (a KafkaUser is "
    "then rendered for the stack)",
)
