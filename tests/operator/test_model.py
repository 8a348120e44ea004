"""resolve_active_mode and spec validation in Python (the same rules the CRD carries)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ocr_operator.model import Mode, OCRServingSpec, OCRServingStatus, resolve_active_mode

BASE = {
    "kafka": {"bootstrapServers": "k:9092"},
    "database": {"urlSecretRef": {"name": "db"}},
}


def _spec(mode: str, policy: str) -> OCRServingSpec:
    return OCRServingSpec.model_validate({**BASE, "architecture": {"mode": mode, "policy": policy}})


def _status(active: str | None, spec_mode: str | None) -> OCRServingStatus:
    return OCRServingStatus.model_validate({"activeMode": active, "specMode": spec_mode})


@pytest.mark.parametrize(
    ("mode", "policy", "active", "seen", "expected"),
    [
        ("Standard", "Manual", "Writer", "Standard", Mode.STANDARD),  # Manual: spec wins
        ("Batched", "Manual", None, None, Mode.BATCHED),
        ("Standard", "Auto", None, None, Mode.STANDARD),  # first reconcile: from spec
        ("Standard", "Auto", "Writer", "Standard", Mode.WRITER),  # advisor moved it
        ("Standard", "Recommend", "Batched", "Standard", Mode.BATCHED),
        ("Batched", "Auto", "Writer", "Standard", Mode.BATCHED),  # user edited spec: reset
    ],
)
def test_resolve_active_mode(
    mode: str, policy: str, active: str | None, seen: str | None, expected: Mode
) -> None:
    assert resolve_active_mode(_spec(mode, policy), _status(active, seen)) is expected


def test_spec_defaults_fill_every_section() -> None:
    spec = OCRServingSpec.model_validate(BASE)
    assert spec.architecture.mode is Mode.STANDARD
    assert spec.kafka.topics.results == "ocr-results"
    assert spec.worker.replicas == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"image": {"tag": "bad tag"}},
        {"image": {"repository": ""}},
        {"worker": {"image": "has space"}},
        {"kafka": {"bootstrapServers": "no-port"}},
        {"architecture": {"mode": "Turbo"}},
        {"kafka": {"bootstrapServers": "k:1", "partitions": 0}},
        {"database": {"urlSecretRef": {"name": "Not_A_Name"}}},
    ],
)
def test_bad_specs_fail_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OCRServingSpec.model_validate({**BASE, **bad})


def test_a_stack_may_not_ask_for_the_drill_engine_the_runtime_also_knows() -> None:
    assert OCRServingSpec.model_validate({**BASE, "engine": {"kind": "noop"}}).engine.kind == "noop"
    with pytest.raises(ValidationError, match="synthetic does not run in a stack"):
        OCRServingSpec.model_validate({**BASE, "engine": {"kind": "synthetic"}})
