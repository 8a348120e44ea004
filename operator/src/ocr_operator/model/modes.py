"""Which mode is active: a pure function of spec and status."""

from __future__ import annotations

from ocr_operator.model.enums import Mode, Policy
from ocr_operator.model.spec import OCRServingSpec
from ocr_operator.model.status import OCRServingStatus


def resolve_active_mode(spec: OCRServingSpec, status: OCRServingStatus) -> Mode:
    """Manual: spec.architecture.mode. Recommend/Auto: status.activeMode, except that a new
    spec.architecture.mode (the user edited it: status.specMode differs) resets it."""
    spec_mode = spec.architecture.mode
    if spec.architecture.policy is Policy.MANUAL:
        return spec_mode
    if status.active_mode is None or status.spec_mode != spec_mode:
        return spec_mode
    return status.active_mode
