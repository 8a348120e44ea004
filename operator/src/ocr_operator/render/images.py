"""Which image each component runs: `<repository>:<tag>-<variant>`.

The variants are the engine builds of Dockerfile.runtime (`ENGINE` build argument) that
`make images` and the release workflow tag: onnx, paddle, onnx-gpu, paddle-gpu. The worker
runs the variant of spec.engine; the API, the writer and the migration Job load no model and
run the CPU variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocr_operator.model import Component, Device, EngineKind, OCRServingSpec

CPU_VARIANT = EngineKind.ONNX.value


@dataclass(frozen=True)
class StackDefaults:
    """The operator's defaults for what a stack's spec leaves unset: the runtime image, and
    where pods go when a component sets neither nodeSelector nor tolerations."""

    repository: str = "ghcr.io/ocr-serving/ocr-runtime"
    tag: str = "0.1.0"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


DEFAULTS = StackDefaults()


def engine_variant(kind: EngineKind, device: Device) -> str:
    """The image variant that carries `kind` for `device` (noop is in every image)."""
    if kind is EngineKind.NOOP:
        return CPU_VARIANT
    return f"{kind.value}-gpu" if device is Device.GPU else kind.value


def component_image(
    spec: OCRServingSpec, component: Component, defaults: StackDefaults = DEFAULTS
) -> str:
    override = {
        Component.API: spec.api.image,
        Component.WORKER: spec.worker.image,
        Component.WRITER: spec.writer.image,
    }[component]
    if override:
        return override
    repository = spec.image.repository or defaults.repository
    tag = spec.image.tag or defaults.tag
    if component is Component.WORKER:
        variant = engine_variant(spec.engine.kind, spec.engine.device)
    else:
        variant = CPU_VARIANT
    return f"{repository}:{tag}-{variant}"


def migration_image(spec: OCRServingSpec, defaults: StackDefaults = DEFAULTS) -> str:
    """The migration Job runs the API's image: the schema version the API expects."""
    return component_image(spec, Component.API, defaults)
