"""The vocabulary both sides share: modes, runtime roles, engines, devices, components, topics,
Kafka security protocols and SASL mechanisms."""

from __future__ import annotations

from enum import StrEnum


class RuntimeMode(StrEnum):
    """The value of OCR_MODE: how a worker handles its jobs."""

    STANDARD = "standard"
    BATCHED = "batched"
    WRITER = "writer"


class Mode(StrEnum):
    """Data-plane architecture of a serving stack."""

    STANDARD = "Standard"
    BATCHED = "Batched"
    WRITER = "Writer"

    @property
    def runtime(self) -> RuntimeMode:
        """The runtime's OCR_MODE for this mode."""
        return RuntimeMode(self.value.lower())


class Role(StrEnum):
    """What `ocr-runtime <role>` runs."""

    API = "api"
    WORKER = "worker"
    WRITER = "writer"
    ALL_IN_ONE = "all-in-one"
    MIGRATE = "migrate"


class Component(StrEnum):
    """A workload of the stack; also the value of the component label."""

    API = "api"
    WORKER = "worker"
    WRITER = "writer"


class Topic(StrEnum):
    """The Kafka topics of a stack, by purpose (their names are settings)."""

    JOBS = "jobs"
    RESULTS = "results"
    DEAD_LETTER = "dead_letter"


class EngineKind(StrEnum):
    ONNX = "onnx"  # RapidOCR 3.x on ONNX Runtime (default)
    PADDLE = "paddle"  # PaddleOCR 2.x on PaddlePaddle
    NOOP = "noop"  # returns an empty result at zero cost: plumbing benchmarks only
    # Zero cost, reads a number drawn into the image, crashes or fails on marker pixels:
    # failure drills (tests/chaos) only.
    SYNTHETIC = "synthetic"


# The engines an OCRServing may ask for: the drill engine never runs in a stack.
STACK_ENGINES = (EngineKind.ONNX, EngineKind.PADDLE, EngineKind.NOOP)


class Device(StrEnum):
    CPU = "cpu"
    GPU = "gpu"


class KafkaSecurityProtocol(StrEnum):
    """Kafka's own names (OCR_KAFKA_SECURITY_PROTOCOL), passed to the client unchanged."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_tls(self) -> bool:
        return self in (KafkaSecurityProtocol.SSL, KafkaSecurityProtocol.SASL_SSL)

    @property
    def uses_sasl(self) -> bool:
        return self in (KafkaSecurityProtocol.SASL_PLAINTEXT, KafkaSecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    PLAIN = "PLAIN"
