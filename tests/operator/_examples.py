"""Helpers shared by the operator tests: the examples and their OCRServing specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ocr_operator.model import OCRServingSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("standard", "batched", "writer", "auto")


def example_documents(name: str) -> list[dict[str, Any]]:
    with (ROOT / "examples" / f"{name}.yaml").open() as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def example_resource(name: str) -> dict[str, Any]:
    return next(d for d in example_documents(name) if d["kind"] == "OCRServing")


def example_spec(name: str) -> OCRServingSpec:
    return OCRServingSpec.model_validate(example_resource(name)["spec"])
