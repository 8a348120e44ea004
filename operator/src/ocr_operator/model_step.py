"""The model step of reconcile: spec.engine.model to the concrete model the workers serve.

Image and Uri sources resolve without I/O. An MLflow reference goes to the registry on every
reconcile (so within one resync period of an alias moving, the workers roll). When the
registry does not answer, the version resolved last (status.model) keeps being rendered:
an outage of the registry must not roll, or stop, a serving stack.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from ocr_operator.model import OCRServingSpec
from ocr_operator.model.model_source import (
    ModelSourceKind,
    ModelStatus,
    ResolvedModel,
    static_resolution,
)
from ocr_operator.ports import Body, ModelRegistry, RegistryUnavailableError

log = logging.getLogger(__name__)


async def resolve_model(
    registry: ModelRegistry, spec: OCRServingSpec, raw_status: Body
) -> ResolvedModel:
    """The model to render. Raises `ModelNotFoundError`, or `RegistryUnavailableError`
    when the registry is away and nothing was resolved before."""
    wanted = spec.engine.model
    static = static_resolution(wanted, spec.engine.model_version)
    if static is not None:
        return static
    assert wanted.mlflow is not None  # the one source that needs the registry
    try:
        return await registry.resolve(wanted.mlflow)
    except RegistryUnavailableError as error:
        previous = _previous(spec, raw_status)
        if previous is None:
            raise
        log.warning("%s; keeping %s", error, previous.ref)
        return previous


def _previous(spec: OCRServingSpec, raw_status: Body) -> ResolvedModel | None:
    """status.model when it resolved the same registered model (and version, if pinned)."""
    ref = spec.engine.model.mlflow
    if ref is None or not raw_status.get("model"):
        return None
    try:
        seen = ModelStatus.model_validate(raw_status["model"])
    except ValidationError:
        return None
    name, version, _ = ref.reference()
    if seen.source is not ModelSourceKind.MLFLOW or seen.name != name or not seen.location:
        return None
    if version is not None and seen.version != version:
        return None
    return ResolvedModel(seen.source, seen.name, seen.version, seen.location, ref.tracking_uri)
